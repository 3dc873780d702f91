"""Learned suggestions: root causes people confirmed on past incidents whose evidence resembles a new one.

Similarity is `postmortems.similar`'s signature overlap (model, monitor, detectors that fired, their features),
without tags, so that what people concluded does not feed back into "does the evidence look alike".

For a root-cause tag t and a new incident x, over past incidents p with jaccard(x, p) >= RESEMBLES:

    support    = 1 - prod(1 - CONFIRM_WEIGHT * sim(p))   over p where a person confirmed t
    confidence = support * prod(1 - REJECT_WEIGHT * sim(r))  over r where a person rejected t

Support is a noisy-OR: more and closer confirmations make it surer, and one identical past incident gives 0.8,
two give 0.96, never 1. Each similar rejection scales it down (an identical one halves it). A rejection on an incident
with the same evidence fingerprint (the detectors that fired and their features) is a veto when such rejections
are at least as many as confirmations with that fingerprint: people said no to exactly this evidence.
Suggestions under MIN_CONFIDENCE are dropped.

The diagnosis' own signatures learn too (`weigh`): a tag people rejected where the same signature suggested it
before is lowered, and dropped once rejections clearly outnumber confirmations.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace

from sqlmodel import Session, col, select

from postmortems.diagnosis.evidence import Suggestion
from postmortems.models import Incident, IncidentTag
from postmortems.similar import jaccard, signature
from postmortems.taxonomy import load_index

RESEMBLES, CONFIRM_WEIGHT, REJECT_WEIGHT, MIN_CONFIDENCE = 0.5, 0.8, 0.5, 0.3
CANDIDATES = 2000  # decided (confirmed or rejected) tags read, newest incidents first
LEARNED = "learned"  # the signature of learned suggestions


@dataclass(frozen=True)
class LearnedSuggestion:
    """A root cause suggested from confirmed history, with the past incidents it rests on."""

    tag: str
    confidence: float
    reason: str
    source_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...] = ()


@dataclass
class _Votes:
    confirmed: list[tuple[int, float]] = field(default_factory=list)  # (incident id, similarity)
    rejected: list[tuple[int, float]] = field(default_factory=list)
    same_confirmed: int = 0  # confirmations / rejections on incidents with the same fingerprint
    same_rejected: int = 0


def evidence_of(incident: Incident) -> set[str]:
    """The structured evidence similarity compares (no tags)."""
    return signature(incident, [])


def fingerprint(incident: Incident) -> frozenset[str]:
    """Which detectors fired on which features; the key rejections veto on.

    The diagnosis signatures (unit change, skew, ...) are meant to join this set when they are stored.
    """
    return frozenset(s for s in evidence_of(incident) if s.startswith(("detector:", "feature:")))


def learned_suggestions(session: Session, incident: Incident) -> list[LearnedSuggestion]:
    """Root causes confirmed on resembling past incidents, weighed against rejections; surest first."""
    assert incident.id is not None
    mine, my_print = evidence_of(incident), fingerprint(incident)
    if not my_print:
        return []
    index = load_index(session)
    decided = session.exec(
        select(IncidentTag.incident_id, IncidentTag.tag, IncidentTag.confidence).join(Incident)
        .where(col(IncidentTag.confidence).in_(("confirmed", "rejected")), IncidentTag.incident_id != incident.id,
               col(Incident.opened_at) <= incident.opened_at)
        .order_by(col(IncidentTag.incident_id).desc()).limit(CANDIDATES)).all()
    decided = [d for d in decided if index.is_root_cause(d[1])]
    if not decided:
        return []
    pasts = {p.id: p for p in session.exec(select(Incident).where(col(Incident.id).in_({d[0] for d in decided})))}
    votes: dict[str, _Votes] = defaultdict(_Votes)
    for past_id, tag, decision in decided:
        past = pasts[past_id]
        similarity = jaccard(mine, evidence_of(past))
        if similarity < RESEMBLES:
            continue
        same = fingerprint(past) == my_print
        vote = votes[tag]
        if decision == "confirmed":
            vote.confirmed.append((past_id, similarity))
            vote.same_confirmed += same
        else:
            vote.rejected.append((past_id, similarity))
            vote.same_rejected += same
    out = [s for tag, vote in votes.items() if (s := _suggestion(tag, vote, pasts, mine)) is not None]
    return sorted(out, key=lambda s: (-s.confidence, s.tag))


def _suggestion(tag: str, vote: _Votes, pasts: dict[int | None, Incident], mine: set[str]) -> LearnedSuggestion | None:
    if not vote.confirmed or (vote.same_rejected and vote.same_rejected >= vote.same_confirmed):
        return None
    confidence = combined(vote.confirmed, vote.rejected)
    if confidence < MIN_CONFIDENCE:
        return None
    sources = tuple(sorted(i for i, _ in vote.confirmed))
    rejected = tuple(sorted(i for i, _ in vote.rejected))
    shared = set.intersection(mine, *(evidence_of(pasts[i]) for i in sources))
    reason = f"confirmed on {_ids(sources)}, which had {_shared(shared, all_same=len(shared) == len(mine))}"
    if rejected:
        reason += f"; rejected on {_ids(rejected)} with similar evidence, which lowers it"
    return LearnedSuggestion(tag, confidence, reason, sources, rejected)


def combined(confirmed: list[tuple[int, float]], rejected: list[tuple[int, float]]) -> float:
    """The module docstring's formula: noisy-OR of the confirmations, scaled down by each rejection."""
    doubt = 1.0
    for _, similarity in confirmed:
        doubt *= 1 - CONFIRM_WEIGHT * similarity
    confidence = 1 - doubt
    for _, similarity in rejected:
        confidence *= 1 - REJECT_WEIGHT * similarity
    return round(confidence, 3)


def _ids(ids: tuple[int, ...]) -> str:
    named = [f"#{i}" for i in ids[:5]] + ([f"{len(ids) - 5} more"] if len(ids) > 5 else [])
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def _shared(shared: set[str], all_same: bool) -> str:
    detectors = sorted(s.split(":", 1)[1] for s in shared if s.startswith("detector:"))
    features = sorted(s.split(":", 1)[1] for s in shared if s.startswith("feature:"))
    what = "; ".join(x for x in (f"features {', '.join(features)}" if features else "",
                                 f"detectors {', '.join(detectors)}" if detectors else "") if x)
    if all_same:
        return f"the same drifted features and detectors ({what})"
    return f"similar evidence ({what} in common)" if what else "similar evidence"


def as_suggestions(session: Session, incident: Incident) -> list[Suggestion]:
    """Learned suggestions as one more source of the diagnosis (signature "learned")."""
    return [Suggestion(s.tag, s.confidence, s.reason, LEARNED) for s in learned_suggestions(session, incident)]


def weigh(session: Session, incident: Incident, suggestions: list[Suggestion]) -> list[Suggestion]:
    """How people judged each signature's tag before counts against it: a signature's suggestion of tag t is
    scaled by (confirmed + 1) / (confirmed + rejected + 1) over past incidents where the same signature had
    suggested t and a person decided; under MIN_CONFIDENCE it is dropped. The reason names the rejections."""
    assert incident.id is not None
    judged = [s for s in suggestions if s.signature != LEARNED]
    if not judged:
        return suggestions
    rows = session.exec(
        select(IncidentTag.incident_id, IncidentTag.tag, IncidentTag.signature, IncidentTag.confidence)
        .where(col(IncidentTag.signature).in_({s.signature for s in judged}),
               col(IncidentTag.tag).in_({s.tag for s in judged}),
               col(IncidentTag.confidence).in_(("confirmed", "rejected")), IncidentTag.incident_id != incident.id)
        .order_by(col(IncidentTag.incident_id).desc()).limit(CANDIDATES)).all()
    out = []
    for s in suggestions:
        decided = [(i, c) for i, tag, sig, c in rows if tag == s.tag and sig == s.signature]
        rejected = tuple(sorted(i for i, c in decided if c == "rejected"))
        if not rejected or s.signature == LEARNED:
            out.append(s)
            continue
        confirmed = len(decided) - len(rejected)
        confidence = round(s.confidence * (confirmed + 1) / (confirmed + len(rejected) + 1), 3)
        if confidence >= MIN_CONFIDENCE:
            out.append(replace(s, confidence=confidence, reason=f"{s.reason}; people rejected it for this signature "
                               f"on {_ids(rejected)} (confirmed {confirmed}x), which lowers it"))
    return sorted(out, key=lambda s: (-s.confidence, s.tag))
