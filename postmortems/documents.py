"""Keep each incident's searchable document (title + everything people and detectors wrote) current."""

from sqlmodel import Session, col, select

from postmortems.models import ActionItem, Incident, IncidentDocument, IncidentTag, TimelineEntry, WriteupRevision


def refresh_document(session: Session, incident: Incident) -> None:
    """Rebuild the text the full-text index sees and the copies search filters on (status, severity, tags...);
    called after every change to an incident or its tags."""
    assert incident.id is not None
    notes = session.exec(select(TimelineEntry.text).where(TimelineEntry.incident_id == incident.id,
                                                          TimelineEntry.kind == "note")).all()
    items = session.exec(select(ActionItem.title).where(ActionItem.incident_id == incident.id)).all()
    kept = session.exec(select(IncidentTag.tag, IncidentTag.reason).where(IncidentTag.incident_id == incident.id,
                                                                          IncidentTag.confidence != "rejected")).all()
    tags, reasons = [tag for tag, _ in kept], [reason for _, reason in kept if reason]
    writeup = session.exec(select(WriteupRevision.markdown).where(WriteupRevision.incident_id == incident.id)
                           .order_by(col(WriteupRevision.revision).desc())).first()
    features = [f["feature"] for c in incident.evidence.get("checks", []) for f in c.get("findings", [])]
    body = "\n".join([
        incident.summary, *notes, writeup or "", *items, incident.impact, " ".join(incident.affected_models),
        " ".join(incident.affected_pipelines), " ".join(features), " ".join(t.replace("-", " ") for t in tags),
        *reasons,  # the diagnosis' reasons name features, maps and numbers people search for
    ])
    # merge: insert the document, or overwrite the stored one with the same incident_id.
    session.merge(IncidentDocument(
        # As written, angle brackets included: the indexes split words at them (see migration 0008), and the
        # snippets quote them.
        incident_id=incident.id, title=incident.title, body=body, opened_at=incident.opened_at,
        severity=incident.severity, status=incident.status, model_id=incident.model_id, tags=sorted(tags)))
    session.flush()
