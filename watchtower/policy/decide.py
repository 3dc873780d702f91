"""One pass's outcomes + the policy + the passes before -> what to do now (a Plan). Pure, so backtests replay it.

Each breached detector goes to the first rule, in order, that matches it; a rule that does not match (too
few features, say) lets it fall through to the next. A matched rule fires when it matched `k` of the last `n`
passes that reached a verdict, this one included.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.base import DATASET
from watchtower.policy.breach import DetectorOutcome
from watchtower.policy.rules import ACTION_ORDER, Action, Policy, Rule, Severity

VERDICTS = ("ok", "breached")
ACTION_WORDS = {"pause_pipeline": "pause the pipeline", "swap_model": "swap to the fallback",
                "open_incident": "open an incident", "notify": "page", "record": "record only"}


@dataclass(frozen=True)
class Hit:
    """A rule that matched this pass, with what it matched."""

    rule: Rule
    detectors: tuple[str, ...]
    features: tuple[str, ...]
    seen: int = 1  # passes of the rule's last n that matched it, this one included

    @property
    def confirmed(self) -> bool:
        return self.seen >= self.rule.confirm.k

    def why(self) -> str:
        # A KPI's finding is about the metric itself ("accuracy"), not a feature: no "on accuracy".
        named = [f for f in self.features if f not in self.detectors and f != DATASET]
        shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
        where = f" on {shown}" if shown else ""
        confirm = self.rule.confirm
        return (f"{', '.join(self.detectors)} breached{where}; matched {self.seen} of the last {confirm.n} "
                f"pass{'es' if confirm.n > 1 else ''} (needs {confirm.k})")


@dataclass(frozen=True)
class Plan:
    """What one pass matched and what the policy does about it."""

    hits: tuple[Hit, ...]
    actions: tuple[Action, ...]  # done for real, in ACTION_ORDER
    dry_run: tuple[Action, ...]  # only recorded ("would ..."), not also done for real
    severity: Severity | None  # the most severe rule that opens an incident for real
    verdict: bool  # False when no detector reached a verdict (insufficient data, errors)

    @property
    def fired(self) -> tuple[Hit, ...]:
        return tuple(h for h in self.hits if h.confirmed)

    @property
    def matched(self) -> frozenset[str]:
        return frozenset(h.rule.name for h in self.hits)

    @property
    def healthy(self) -> bool:
        return self.verdict and not self.hits

    def rule_for(self, action: Action) -> Hit | None:
        """The first fired rule that asked for `action`."""
        return next((h for h in self.fired if action in h.rule.actions), None)

    def explain(self) -> str:
        """Plain words: which rule fired and why, which wait for confirmation."""
        if not self.hits:
            return "no rule matched" if self.verdict else "no verdict (insufficient data or errors)"
        parts = []
        for hit in self.hits:
            doing = ", ".join(ACTION_WORDS[a] for a in hit.rule.actions)
            if not hit.confirmed:
                parts.append(f"rule '{hit.rule.name}' waits for confirmation: {hit.why()}")
            elif hit.rule.dry_run or doing == "record only":
                parts.append(f"rule '{hit.rule.name}' fired ({'dry run: would ' + doing if hit.rule.dry_run else doing}"
                             f"): {hit.why()}")
            else:
                parts.append(f"rule '{hit.rule.name}' fired ({hit.rule.severity}: {doing}): {hit.why()}")
        return "; ".join(parts)


def match(policy: Policy, outcomes: Sequence[DetectorOutcome]) -> list[Hit]:
    """The rules this pass matches, in policy order (not yet confirmed)."""
    claimed: set[str] = set()
    hits = []
    breached = [o for o in outcomes if o.status == "breached"]
    for rule in policy.rules:
        detectors, features = [], []
        for outcome in breached:
            if outcome.detector in claimed or not rule.match.takes(outcome.detector):
                continue
            found = [f.feature for f in outcome.findings if f.breached
                     and (not rule.match.features or f.feature in rule.match.features)]
            if found:
                detectors.append(outcome.detector)
                features += [f for f in found if f not in features]
        if detectors and len(features) >= rule.match.min_features:
            claimed.update(detectors)
            hits.append(Hit(rule, tuple(detectors), tuple(features)))
    return hits


def plan(policy: Policy, outcomes: Sequence[DetectorOutcome], history: Sequence[frozenset[str]]) -> Plan:
    """Match, confirm against `history` (rule names matched by earlier passes with a verdict, newest first),
    and decide the actions."""
    verdict = any(o.status in VERDICTS for o in outcomes)
    hits = [Hit(h.rule, h.detectors, h.features,
                seen=1 + sum(h.rule.name in past for past in history[:h.rule.confirm.n - 1]))
            for h in match(policy, outcomes)] if verdict else []
    live: set[Action] = set()
    dry: set[Action] = set()
    severities = []
    for hit in hits:
        if not hit.confirmed:
            continue
        (dry if policy.dry_run or hit.rule.dry_run else live).update(hit.rule.actions)
        if "open_incident" in hit.rule.actions and not (policy.dry_run or hit.rule.dry_run):
            severities.append(hit.rule.severity)
    return Plan(hits=tuple(hits), actions=tuple(a for a in ACTION_ORDER if a in live),
                dry_run=tuple(a for a in ACTION_ORDER if a in dry - live),
                severity=min(severities) if severities else None, verdict=verdict)
