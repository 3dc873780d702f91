"""Similar past incidents: overlap of evidence signatures (model, monitor, detectors, features, tags) plus text.

Links are stored; a person's "not similar" sets `dismissed`, and recomputing never brings it back.
"""

import re
from collections.abc import Iterable

from sqlmodel import Session, col, or_, select

from postmortems.models import Incident, IncidentDocument, SimilarLink
from watchtower.errors import NotFound

SIGNATURE_WEIGHT, TEXT_WEIGHT = 0.7, 0.3
MIN_SCORE, KEEP, CANDIDATES = 0.2, 5, 500
_WORD = re.compile(r"[a-z0-9]{3,}")


def signature(incident: Incident, tags: Iterable[str]) -> set[str]:
    """What fired and where: the structured part of the comparison (`tags`: the incident's non-rejected tags)."""
    items = {f"model:{m}" for m in incident.affected_models}
    if incident.monitor_id is not None:
        items.add(f"monitor:{incident.model_id}:{incident.monitor_id}")
    for check in incident.evidence.get("checks", []):
        if check.get("findings"):
            items.add(f"detector:{check['detector']}")
            items |= {f"feature:{f['feature']}" for f in check["findings"]}
    return items | {f"tag:{t}" for t in tags}


def words(incident: Incident) -> set[str]:
    return set(_WORD.findall(f"{incident.title} {incident.summary}".lower()))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def link_similar(session: Session, incident: Incident) -> list[SimilarLink]:
    """Find and store the most similar earlier incidents; returns the links, best first."""
    assert incident.id is not None
    document = session.get(IncidentDocument, incident.id)
    mine, my_words = signature(incident, document.tags if document else []), words(incident)
    # Candidates: the most recent incidents, plus every earlier one of the same model; each with the tags
    # its search document keeps, so scoring 500 candidates costs one statement, not one per candidate.
    recent = select(Incident.id).where(Incident.id != incident.id).order_by(col(Incident.id).desc()).limit(CANDIDATES)
    scope = or_(col(Incident.id).in_(recent), Incident.model_id == incident.model_id) \
        if incident.model_id is not None else col(Incident.id).in_(recent)
    candidates = session.exec(select(Incident, IncidentDocument.tags).join(IncidentDocument).where(
        Incident.id != incident.id, col(Incident.opened_at) <= incident.opened_at, scope)).all()
    known = {link.similar_id: link for link in session.exec(
        select(SimilarLink).where(SimilarLink.incident_id == incident.id)).all()}
    scored = []
    for past, tags in candidates:
        theirs = signature(past, tags)
        score = SIGNATURE_WEIGHT * jaccard(mine, theirs) + TEXT_WEIGHT * jaccard(my_words, words(past))
        if score >= MIN_SCORE:
            shared = sorted(mine & theirs)
            scored.append((score, past, [s.split(":", 1)[0] + " " + s.split(":")[-1] for s in shared][:8]))
    scored.sort(key=lambda s: -s[0])
    links = []
    for score, past, reasons in scored[:KEEP]:
        assert past.id is not None
        link = known.get(past.id)
        if link is None:
            link = SimilarLink(incident_id=incident.id, similar_id=past.id, score=round(score, 4), reasons=reasons)
        elif not link.dismissed:
            link.score, link.reasons = round(score, 4), reasons
        session.add(link)
        links.append(link)
    session.flush()
    return [link for link in links if not link.dismissed]


def dismiss(session: Session, incident_id: int, similar_id: int, author: str) -> None:
    """Remember that a person said the suggestion is not similar."""
    link = session.exec(select(SimilarLink).where(SimilarLink.incident_id == incident_id,
                                                  SimilarLink.similar_id == similar_id)).first()
    if link is None:
        raise NotFound(f"incident {similar_id} is not linked as similar to {incident_id}")
    link.dismissed, link.dismissed_by = True, author
    session.add(link)
    session.flush()
