"""The Action protocol and the loop that runs actions on a breach, each in its own savepoint."""

import logging
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import Session

from postmortems.service import add_entry
from watchtower.actions.models import ActionRun
from watchtower.policy.breach import Breach
from watchtower.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class ActionContext:
    """A breach plus what earlier actions of the same pass established."""

    breach: Breach
    runtime: Runtime
    incident_id: int | None = None
    incident_created: bool = False
    runs: list[ActionRun] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [r.action for r in self.runs if not r.ok]


class Action(Protocol):
    """Does one thing about a breach."""

    name: str

    def execute(self, ctx: ActionContext, session: Session) -> str:
        """Do it; return what was done. Raise on failure."""
        ...


def run_actions(actions: list[Action], ctx: ActionContext, session: Session) -> list[ActionRun]:
    """Run every action; a failure is rolled back to its savepoint, logged, counted, and the next one runs."""
    unlogged: list[ActionRun] = []
    for action in actions:
        try:
            with session.begin_nested():
                detail, ok = action.execute(ctx, session), True
        except Exception as exc:  # one broken action must not stop the others
            log.exception("action %s failed for model %s", action.name, ctx.breach.model_name)
            ctx.runtime.metrics.action_failures.labels(action.name).inc()
            detail, ok = f"{type(exc).__name__}: {exc}", False
        run = ActionRun(model_id=ctx.breach.model_id, action=action.name, ok=ok, detail=detail)
        session.add(run)
        ctx.runs.append(run)
        unlogged.append(run)
        if ctx.incident_id is not None:
            # Actions that ran before the incident existed reach its timeline as soon as it does.
            for earlier in unlogged:
                earlier.incident_id = ctx.incident_id
                text = earlier.detail if earlier.ok else f"FAILED: {earlier.detail}"
                add_entry(session, ctx.incident_id, earlier.action, text, details={"ok": earlier.ok},
                          at=ctx.breach.window_end)  # the pass's clock: its entries read in the order they happened
            unlogged.clear()
    session.flush()
    return ctx.runs
