"""Bulk import of historic postmortems (JSON) and export of one incident as JSON or Markdown."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from postmortems import service
from postmortems.documents import refresh_document
from postmortems.models import ActionItem, IncidentTag, Status, WriteupRevision
from postmortems.schemas import IncidentCreate
from postmortems.taxonomy import load_index
from watchtower.clock import to_utc
from watchtower.errors import Invalid, field_error
from watchtower.limits import LongText, SafeStr, UtcDatetime


class ImportedTag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: SafeStr = Field(max_length=100)
    confidence: Literal["confirmed", "suggested"] = "confirmed"


class ImportedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: UtcDatetime
    kind: SafeStr = Field(default="note", max_length=50)
    author: SafeStr = Field(default="import", max_length=200)
    text: LongText


class ImportedItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: SafeStr = Field(min_length=1, max_length=500)
    owner: SafeStr | None = Field(default=None, max_length=200)
    status: Literal["open", "done", "wont_do"] = "open"


class ImportedIncident(IncidentCreate):
    """A historic postmortem: the manual fields plus where it ended and what was written."""

    model_config = ConfigDict(extra="forbid")
    tagged: list[ImportedTag] = Field(default_factory=list, max_length=100, description="Tags with their confidence")
    status: Status = Status.resolved
    acknowledged_at: UtcDatetime | None = None
    mitigated_at: UtcDatetime | None = None
    resolved_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    timeline: list[ImportedEntry] = Field(default_factory=list, max_length=10_000)
    writeup: SafeStr | None = Field(default=None, max_length=500_000)
    action_items: list[ImportedItem] = Field(default_factory=list, max_length=1000)


class ImportBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incidents: list[ImportedIncident] = Field(min_length=1, max_length=5000)


def import_incidents(session: Session, batch: ImportBatch) -> list[int]:
    """Validate every incident first (unknown tags, impossible states), then store them all."""
    index = load_index(session)
    errors = []
    for i, item in enumerate(batch.incidents):
        errors += [field_error(f"body.incidents.{i}.tagged.{j}.tag", f"unknown tag '{t.tag}'")
                   for j, t in enumerate(item.tagged) if t.tag not in index.nodes]
        if item.status == Status.postmortem_complete and not any(
                t.confidence == "confirmed" and index.is_root_cause(t.tag) for t in item.tagged):
            errors.append(field_error(f"body.incidents.{i}.status",
                                      "postmortem_complete needs a confirmed root-cause tag"))
    if errors:
        raise Invalid(f"{len(errors)} problem(s); nothing was imported", errors=errors)
    # History is not replayed through the lifecycle: imported states and timestamps are taken as given.
    ids = []
    for item in batch.incidents:
        incident = service.file_incident(session, item, source="import")
        assert incident.id is not None
        for name in ("acknowledged_at", "mitigated_at", "resolved_at", "completed_at"):
            value = getattr(item, name)
            setattr(incident, name, to_utc(value) if value else None)
        incident.status = item.status.value
        for tag in item.tagged:
            session.add(IncidentTag(incident_id=incident.id, tag=tag.tag, confidence=tag.confidence,
                                    source="import", author=item.author))
        for entry in item.timeline:
            service.add_entry(session, incident.id, entry.kind, entry.text, source="human", author=entry.author,
                              at=to_utc(entry.at))
        for action in item.action_items:
            session.add(ActionItem(incident_id=incident.id, title=action.title, owner=action.owner,
                                   status=action.status))
        if item.writeup:
            session.add(WriteupRevision(incident_id=incident.id, revision=1, markdown=item.writeup,
                                        author=item.author))
        session.add(incident)
        session.flush()
        refresh_document(session, incident)
        ids.append(incident.id)
    return ids
