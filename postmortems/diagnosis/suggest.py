"""Run every suggestion source over an incident's evidence and merge what they say, one suggestion per tag."""

from collections.abc import Callable, Sequence

from sqlmodel import Session

from postmortems.diagnosis import learned
from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.diagnosis.signatures import (
    broken_join,
    covariate_concept,
    prediction_shift,
    serving_infra,
    skew,
    symptoms,
    unit_change,
)
from postmortems.models import Incident

# A source reads the evidence (and, for sources that learn from history, the database) and suggests tags.
Source = Callable[[Session | None, Evidence], list[Suggestion]]


def from_signatures(session: Session | None, evidence: Evidence) -> list[Suggestion]:
    """Every built-in signature; moves that a unit change, a skew or a broken join explain are no covariate shift."""
    explained = unit_change.explained(evidence) | skew.explained(evidence) | broken_join.explained(evidence)
    return [*unit_change.suggest(evidence), *skew.suggest(evidence), *broken_join.suggest(evidence),
            *covariate_concept.suggest(evidence, explained), *prediction_shift.suggest(evidence),
            *serving_infra.suggest(evidence), *symptoms.suggest(evidence)]


# The one place suggestion sources are listed: learned suggestions from confirmed history plug in here.
SOURCES: list[Source] = [from_signatures]


def diagnose(evidence: Evidence, session: Session | None = None,
             sources: Sequence[Source] | None = None) -> list[Suggestion]:
    """Suggestions of all sources, the most confident per tag, most confident first."""
    best: dict[str, Suggestion] = {}
    for source in SOURCES if sources is None else sources:
        for suggestion in source(session, evidence):
            if suggestion.tag not in best or suggestion.confidence > best[suggestion.tag].confidence:
                best[suggestion.tag] = suggestion
    return sorted(best.values(), key=lambda s: (-s.confidence, s.tag))


def diagnose_incident(session: Session, incident: Incident, evidence: Evidence) -> list[Suggestion]:
    """An incident's diagnosis: every source over its merged evidence plus the root causes people confirmed on
    resembling incidents, each weighed by how people judged its signature's suggestions before."""
    remembered = learned.as_suggestions(session, incident)
    found = diagnose(evidence, session, sources=[*SOURCES, lambda _session, _evidence: remembered])
    return learned.weigh(session, incident, found)
