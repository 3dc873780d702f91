"""What a guard has done since a postmortem added it: its check runs (by status) and the incidents it caught."""

from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from postmortems.models import ActionItem, TimelineEntry
from postmortems.schemas import GuardRead
from watchtower.checks.models import CheckRun

GuardState = Literal["not_yet_run", "quiet", "fired"]
CAUGHT, FIRED = "guard_caught", "guard_fired"  # timeline kinds: on the caught incident, on the guard's incident


def guard_read(session: Session, item: ActionItem) -> GuardRead | None:
    """The item's guard with its state: not yet run, ran and stayed quiet, or fired (None: not a guard)."""
    if item.guard is None:
        return None
    rows = session.exec(select(CheckRun.status, func.count(), func.max(CheckRun.created_at))
                        .where(CheckRun.guard_item_id == item.id).group_by(CheckRun.status)).all()
    runs = {status: int(n) for status, n, _ in rows}
    last = {status: at for status, _, at in rows}
    state: GuardState = "fired" if runs.get("breached") else "quiet" if runs.get("ok") else "not_yet_run"
    caught = session.exec(select(TimelineEntry.details).where(TimelineEntry.incident_id == item.incident_id,
                                                              TimelineEntry.kind == FIRED)
                          .order_by(col(TimelineEntry.id))).all()
    return GuardRead(model=item.guard["model"], monitor=item.guard["monitor"], detector=item.guard["detector"],
                     params=item.guard["params"], state=state, runs=runs,
                     last_run_at=max(last.values(), default=None), last_fired_at=last.get("breached"),
                     caught=[int(d["caught_incident_id"]) for d in caught
                             if d.get("action_item_id") == item.id])
