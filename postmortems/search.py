"""Find incidents by words (every word must appear) and by tag, newest first.

Plain case-insensitive matching that behaves the same on SQLite and PostgreSQL; ranked
full-text search (FTS5 / tsvector) replaces it in the postmortem issue.
"""

from sqlmodel import Session, col, func, or_, select

from postmortems.models import Incident, IncidentTag


def search_incidents(session: Session, q: str = "", tag: str | None = None, status: str | None = None,
                     model_id: int | None = None, limit: int = 50) -> list[Incident]:
    """Incidents matching all words of `q`, optionally with a tag, status or model."""
    query = select(Incident)
    for word in q.lower().split()[:20]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(or_(
            func.lower(Incident.search_text).like(pattern, escape="\\"),
            func.lower(Incident.title).like(pattern, escape="\\"),
            func.lower(Incident.summary).like(pattern, escape="\\"),
        ))
    if tag:
        query = query.where(col(Incident.id).in_(select(IncidentTag.incident_id).where(IncidentTag.tag == tag)))
    if status:
        query = query.where(Incident.status == status)
    if model_id is not None:
        query = query.where(Incident.model_id == model_id)
    return list(session.exec(query.order_by(col(Incident.opened_at).desc(), col(Incident.id).desc())
                             .limit(limit)).all())
