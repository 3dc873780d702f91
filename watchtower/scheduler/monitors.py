"""The monitors the scheduler runs, read from the registry's tables.

Here rather than in watchtower.registry.service, which imports the response policy and the incident service
(~0.15 s): the scheduler reads this at start-up, in `watchtower serve`'s lifespan, before the first /healthz.
"""

from sqlmodel import Session, col, select

from watchtower.registry.models import Monitor, MonitoredModel


def scheduled_monitors(session: Session) -> list[tuple[str, str, int]]:
    """(model name, monitor name, interval_s) of every monitor the scheduler runs: archived models' excluded."""
    rows = session.exec(select(MonitoredModel.name, Monitor.name, Monitor.interval_s).join(Monitor)
                        .where(col(MonitoredModel.archived_at).is_(None))
                        .order_by(col(MonitoredModel.name), col(Monitor.name))).all()
    return [(model, monitor, interval) for model, monitor, interval in rows]
