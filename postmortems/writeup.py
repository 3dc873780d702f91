"""The postmortem document: drafted from what Watchtower knows, then edited by people, every revision kept."""

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from postmortems import markdown
from postmortems.documents import refresh_document
from postmortems.models import Incident, TimelineEntry, WriteupRevision
from postmortems.schemas import IncidentRead, WriteupRead
from watchtower.errors import Conflict

if TYPE_CHECKING:
    from jinja2 import Environment

MITIGATING = ("pause_pipeline", "swap_model", "restore", "resume")


@cache
def _environment() -> "Environment":
    """The write-up's Jinja2 environment, built by the first draft: Jinja2 stays out of the app's start-up."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), undefined=StrictUndefined,
                      autoescape=False, keep_trailing_newline=True)  # Markdown, not HTML: the page escapes it
    # User text is escaped for Markdown as it goes in (no forged links, raw HTML or broken tables; see markdown.py).
    env.filters.update(md=markdown.inline, md_block=markdown.block, md_code=markdown.code)
    return env


def draft(incident: IncidentRead) -> str:
    """A first version of the write-up, pre-filled from the evidence, timeline, tags and action items."""
    findings = [f | {"detector": c["detector"]} for c in incident.evidence.get("checks", [])
                for f in c.get("findings", [])]
    drift = sorted((f for f in findings if f.get("p_value") is not None), key=lambda f: f["score"])[:15]
    kpis = [{"feature": f["feature"], "score": f["score"], "threshold": f["threshold"],
             "reference": f.get("reference_accuracy")} for f in findings if f["detector"] == "accuracy"]
    return _environment().get_template("writeup.md.j2").render(
        incident=incident, impact_numbers=incident.impact_numbers, durations=incident.durations, drift=drift,
        kpis=kpis, timeline=incident.timeline,
        root_causes=[t.label for t in incident.tags if t.confidence == "confirmed" and t.root_cause],
        suggested=[t.label for t in incident.tags if t.confidence == "suggested"],
        diagnosis=[t for t in incident.tags if t.reason and t.score is not None and t.confidence != "rejected"],
        mitigations=[e for e in incident.timeline if e.kind in MITIGATING and not e.text.startswith("FAILED")],
        action_items=incident.action_items,
    )


def current(session: Session, incident_id: int) -> WriteupRevision | None:
    """The newest saved revision, if any was saved."""
    return session.exec(select(WriteupRevision).where(WriteupRevision.incident_id == incident_id)
                        .order_by(col(WriteupRevision.revision).desc())).first()


def read(session: Session, incident: IncidentRead) -> WriteupRead:
    """The current write-up, or the draft (revision 0) when nobody saved one yet."""
    saved = current(session, incident.id)
    if saved is None:
        return WriteupRead(incident_id=incident.id, revision=0, markdown=draft(incident), author="watchtower",
                           created_at=None)
    return WriteupRead(incident_id=incident.id, revision=saved.revision, markdown=saved.markdown,
                       author=saved.author, created_at=saved.created_at)


def save(session: Session, incident: Incident, markdown: str, author: str, base_revision: int) -> WriteupRevision:
    """Store a new revision; Conflict when someone saved since `base_revision` (no silent overwrite)."""
    assert incident.id is not None
    saved = current(session, incident.id)
    latest = saved.revision if saved else 0
    if base_revision != latest:
        raise Conflict(f"the write-up is at revision {latest}, this edit started from {base_revision}; "
                       "reload and merge")
    revision = WriteupRevision(incident_id=incident.id, revision=latest + 1, markdown=markdown, author=author)
    session.add(revision)
    session.add(TimelineEntry(incident_id=incident.id, kind="writeup", source="human", author=author,
                              text=f"Saved write-up revision {revision.revision}"))
    session.flush()
    refresh_document(session, incident)  # the write-up is searched
    return revision


def history(session: Session, incident_id: int) -> list[WriteupRevision]:
    """Every revision, oldest first: who changed the write-up, and when."""
    return list(session.exec(select(WriteupRevision).where(WriteupRevision.incident_id == incident_id)
                             .order_by(col(WriteupRevision.revision))).all())
