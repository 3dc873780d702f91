"""Replay a period's stored check runs against a policy: the incidents, pages, pauses and swaps it would have cost.

The replay is pure (plain data in, a tally out) and runs every pass through `decide.plan` with the same
confirmation history as a live pass. It simulates the state the live actions read: one open incident per
grouping key (a page goes out only when a pass opens one, as NotifySlack pages only new incidents), a pipeline
that is paused or not, a model on its primary or its fallback. Operator decisions are replayed as they really
happened: a restore, a resume or a person resolving an incident resets that state at its time. The period
starts with nothing open, the pipeline running and the primary serving. Holds (operator decisions that hold
automatic mitigation) are not simulated. backtest_store.py reads the record from the database.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from watchtower.clock import to_utc
from watchtower.errors import Invalid, field_error
from watchtower.policy.breach import DetectorOutcome, group_key
from watchtower.policy.decide import plan
from watchtower.policy.rules import ACTION_ORDER, Policy

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=366)
# Details of live actions that did nothing new (NotifySlack, PausePipeline, SwapToFallback, OpenIncident).
NO_OP = {"notify": "already alerted", "pause_pipeline": "already paused", "swap_model": "already serving",
         "open_incident": "added breach to incident"}


@dataclass(frozen=True)
class StoredPass:
    """One stored monitor pass: when, which monitor, and what each detector said."""

    at: datetime
    monitor_id: int
    outcomes: tuple[DetectorOutcome, ...]


@dataclass(frozen=True)
class OperatorEvent:
    """A person's decision that resets simulated state: a restore, a resume, or an incident resolved."""

    at: datetime
    kind: Literal["restore", "resume", "resolve"]
    group_key: str = ""  # resolve: the resolved incident's grouping key


@dataclass(frozen=True)
class LiveDecision:
    """What the live policy decided about a pass (a PolicyDecision row)."""

    at: datetime
    monitor_id: int
    fired: tuple[str, ...]
    actions: tuple[dict[str, Any], ...]  # {"action", "rule", "outcome", "detail"}
    incident_id: int | None


@dataclass(frozen=True)
class Record:
    """Everything a backtest reads about one model and period."""

    model_id: int
    model_name: str
    since: datetime
    until: datetime
    monitors: dict[int, str]
    passes: list[StoredPass]  # in the period, oldest first
    warmup: dict[int, list[StoredPass]] = field(default_factory=dict)  # passes before it, newest first
    events: list[OperatorEvent] = field(default_factory=list)
    decisions: list[LiveDecision] = field(default_factory=list)


Loader = Callable[[int], Record]  # how many earlier passes per monitor confirmation needs -> the record


class Tally(BaseModel):
    """What a policy cost over the period."""

    incidents: int = 0
    pages: int = 0
    pauses: int = 0
    swaps: int = 0
    held: int = Field(default=0, description="Live only: mitigations held by an operator's decision")
    failed: int = Field(default=0, description="Live only: actions that failed")


class PassLine(BaseModel):
    """One pass on which a rule fired: what the policy did (only what changed state, plus dry runs)."""

    at: datetime
    monitor: str
    fired: list[str]
    actions: list[str]
    dry_run: list[str] = Field(default_factory=list)
    incident: int | None = Field(default=None, description="Replays: the simulated incident's number")


class Replay(BaseModel):
    """A policy's outcome over the period, in total and pass by pass."""

    tally: Tally
    passes: list[PassLine]


class BacktestRequest(BaseModel):
    """A candidate policy and the period to replay (default: the last 30 days)."""

    model_config = ConfigDict(extra="forbid")
    policy: Policy
    since: datetime | None = None
    until: datetime | None = None


class BacktestResult(BaseModel):
    """Candidate vs the current policy, both replayed on equal terms, and what the live policy really did."""

    model: str
    since: datetime
    until: datetime
    passes: int = Field(description="Stored passes in the period")
    verdicts: int = Field(description="Of which reached a verdict (not insufficient data or errors)")
    current_scope: str
    actual: Replay
    current: Replay
    candidate: Replay


def period(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The replayed period (default: the 30 days before `until`, itself default now); Invalid names the field."""
    until = to_utc(until) if until else now
    since = to_utc(since) if since else until - DEFAULT_PERIOD
    if since >= until:
        raise Invalid(f"the period must end after it starts ({since.isoformat()} >= {until.isoformat()})",
                      errors=[field_error("body.until", "must be after since")])
    if until - since > MAX_PERIOD:
        raise Invalid(f"a backtest spans at most {MAX_PERIOD.days} days",
                      errors=[field_error("body.since", f"at most {MAX_PERIOD.days} days before until")])
    return since, until


def history_needed(policy: Policy) -> int:
    """How many earlier passes confirmation looks at: the largest n of any rule, minus the pass itself."""
    return max((rule.confirm.n for rule in policy.rules), default=1) - 1


def backtest(candidate: Policy, current: Policy, scope: str, load: Loader) -> BacktestResult:
    """Replay the candidate and the current policy over the loaded period, beside what really happened."""
    record = load(max(history_needed(candidate), history_needed(current)))
    return BacktestResult(model=record.model_name, since=record.since, until=record.until,
                          passes=len(record.passes), current_scope=scope,
                          verdicts=sum(any(o.status in ("ok", "breached") for o in p.outcomes) for p in record.passes),
                          actual=actual(record), current=replay(current, record), candidate=replay(candidate, record))


@dataclass
class _State:
    """Simulated state: open incidents by grouping key, the pipeline, the serving role."""

    open: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    swapped: bool = False
    healthy: dict[int | None, int] = field(default_factory=dict)  # healthy passes in a row, by recovery scope

    def apply(self, event: OperatorEvent) -> None:
        if event.kind == "restore":
            self.swapped = False
        elif event.kind == "resume":
            self.paused = False
        else:  # a key covers another when one is the other or its per-monitor refinement
            self.open = {k: n for k, n in self.open.items() if not _covers(k, event.group_key)}


def _covers(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ":") or b.startswith(a + ":")


def replay(policy: Policy, record: Record) -> Replay:
    """What `policy` would have done on every pass of the record (pure)."""
    keep = history_needed(policy)
    past = {m: [_matched(policy, p) for p in warm if _verdict(p)][:keep] for m, warm in record.warmup.items()}
    state, tally, lines = _State(), Tally(), []
    events = sorted(record.events, key=lambda e: e.at)
    for stored in record.passes:
        while events and events[0].at <= stored.at:
            state.apply(events.pop(0))
        earlier = past.get(stored.monitor_id, [])
        decided = plan(policy, stored.outcomes, earlier[:keep])
        if decided.verdict:
            past[stored.monitor_id] = [decided.matched, *earlier][:keep]
        key = group_key(policy.grouping, record.model_id, stored.monitor_id)
        done = []
        if "pause_pipeline" in decided.actions and not state.paused:
            state.paused, tally.pauses = True, tally.pauses + 1
            done.append("pause_pipeline")
        if "swap_model" in decided.actions and not state.swapped:
            state.swapped, tally.swaps = True, tally.swaps + 1
            done.append("swap_model")
        if "open_incident" in decided.actions and key not in state.open:
            tally.incidents += 1
            state.open[key] = tally.incidents
            done.append("open_incident")
            if "notify" in decided.actions:
                tally.pages += 1
                done.append("notify")
        _recover(policy, record.model_id, stored.monitor_id, decided.healthy, decided.verdict, key, state)
        if decided.fired:
            lines.append(PassLine(at=stored.at, monitor=record.monitors.get(stored.monitor_id, "?"),
                                  fired=[h.rule.name for h in decided.fired], actions=done,
                                  dry_run=list(decided.dry_run), incident=state.open.get(key)))
    return Replay(tally=tally, passes=lines)


def _recover(policy: Policy, model_id: int, monitor_id: int, healthy: bool, verdict: bool, key: str,
             state: _State) -> None:
    """A policy that resolves on recovery closes the incident after enough healthy passes in a row."""
    if policy.recovery is None or not verdict:
        return
    scope = monitor_id if policy.grouping == "model_monitor" else None
    state.healthy[scope] = state.healthy.get(scope, 0) + 1 if healthy else 0
    if policy.recovery.resolve and state.healthy[scope] >= policy.recovery.healthy_passes:
        state.open.pop(key, None)


def _verdict(stored: StoredPass) -> bool:
    return any(o.status in ("ok", "breached") for o in stored.outcomes)


def _matched(policy: Policy, stored: StoredPass) -> frozenset[str]:
    return plan(policy, stored.outcomes, []).matched  # matching does not depend on history


def actual(record: Record) -> Replay:
    """What the live policy really did: only actions that changed state (an append or a repeat is not one)."""
    tally, lines = Tally(), []
    for decision in record.decisions:
        done = []
        for entry in decision.actions:
            action, outcome = entry.get("action", ""), entry.get("outcome")
            tally.held += outcome == "held"
            tally.failed += outcome == "failed"
            if outcome == "done" and action in NO_OP and NO_OP[action] not in str(entry.get("detail", "")):
                done.append(action)
        tally.pauses += "pause_pipeline" in done
        tally.swaps += "swap_model" in done
        tally.incidents += "open_incident" in done
        tally.pages += "notify" in done
        if decision.fired or done:
            lines.append(PassLine(at=decision.at, monitor=record.monitors.get(decision.monitor_id, "?"),
                                  fired=list(decision.fired), actions=[a for a in ACTION_ORDER if a in done],
                                  dry_run=[e["action"] for e in decision.actions if e.get("outcome") == "dry_run"],
                                  incident=decision.incident_id))
    return Replay(tally=tally, passes=lines)

