"""Keep an incident's suggested tags in line with its evidence: add new suggestions, refresh the reasons of those
that still hold, and withdraw (on the timeline) those whose reason no longer holds unless a person decided them."""

from datetime import datetime

from sqlmodel import Session, select

from postmortems.diagnosis.evidence import Suggestion
from postmortems.models import Incident, IncidentTag
from postmortems.service import add_entry

DIAGNOSED = "detector"  # IncidentTag.source of tags the diagnosis suggests


def apply(session: Session, incident: Incident, suggestions: list[Suggestion], at: datetime,
          created: bool) -> None:
    """Store the suggestions on the incident's tags; `created` says the incident is new (no timeline noise)."""
    assert incident.id is not None
    tags = {t.tag: t for t in session.exec(select(IncidentTag).where(IncidentTag.incident_id == incident.id))}
    wanted = {s.tag: s for s in suggestions}
    for tag in tags.values():
        if tag.tag not in wanted and tag.confidence == "suggested" and tag.source == DIAGNOSED:
            session.delete(tag)
            was = f" (was: {tag.reason})" if tag.reason else ""
            add_entry(session, incident.id, "tag", f"Withdrew suggested tag {tag.tag}: its reason no longer "
                      f"holds{was}", details={"tag": tag.tag, "signature": tag.signature, "withdrawn": True}, at=at)
    for s in suggestions:
        found = tags.get(s.tag)
        if found is None:
            session.add(IncidentTag(incident_id=incident.id, tag=s.tag, source=DIAGNOSED, score=s.confidence,
                                    reason=s.reason, signature=s.signature, created_at=at))
            if not created:
                add_entry(session, incident.id, "tag", f"Suggested tag {s.tag} ({s.confidence:.0%}): {s.reason}",
                          details={"tag": s.tag, "signature": s.signature, "score": s.confidence}, at=at)
        elif found.confidence == "suggested":  # a person's confirmation or rejection stands as they left it
            found.score, found.reason, found.signature = s.confidence, s.reason, s.signature
            session.add(found)
    session.flush()
