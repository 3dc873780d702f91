"""Learned suggestions: root causes confirmed on resembling past incidents, weighed against rejections."""

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from postmortems.diagnosis import reevaluate
from postmortems.diagnosis.evidence import Suggestion
from postmortems.diagnosis.learned import (
    CONFIRM_WEIGHT,
    LEARNED,
    REJECT_WEIGHT,
    as_suggestions,
    learned_suggestions,
    weigh,
)
from postmortems.documents import refresh_document
from postmortems.models import Incident, IncidentTag, TimelineEntry
from postmortems.service import decide_tag, get_incident
from watchtower.clock import utcnow

UNIT = "feature-definition-change"
PIPELINE = "data-pipeline-failure"
START = utcnow() - timedelta(days=30)


def _incident(session: Session, fired: dict[str, list[str]], day: int, model: str = "churn") -> int:
    """A detector incident whose evidence says which detectors fired on which features."""
    checks = [{"check_run_id": None, "monitor": "default", "detector": d, "status": "breached",
               "findings": [{"feature": f, "score": 0.0} for f in features]} for d, features in fired.items()]
    incident = Incident(title=f"{model}: {', '.join(fired)} breached", affected_models=[model],
                        evidence={"monitor": "default", "checks": checks}, opened_at=START + timedelta(days=day))
    session.add(incident)
    session.flush()
    refresh_document(session, incident)
    assert incident.id is not None
    return incident.id


def _decide(session: Session, incident_id: int, tag: str, confidence: str) -> None:
    decide_tag(session, get_incident(session, incident_id), tag, confidence, "ana")


UNIT_CHANGE = {"native_drift": ["f1", "f2"], "out_of_range": ["f1", "f2"]}


def test_an_incident_like_two_confirmed_ones_gets_their_root_cause_naming_them(db: Engine) -> None:
    with Session(db) as session:
        first, second = _incident(session, UNIT_CHANGE, 1), _incident(session, UNIT_CHANGE, 2)
        other = _incident(session, {"volume": ["__dataset__"]}, 3)
        _decide(session, first, UNIT, "confirmed")
        _decide(session, second, UNIT, "confirmed")
        _decide(session, other, PIPELINE, "confirmed")
        new = _incident(session, UNIT_CHANGE, 10)
        incident = get_incident(session, new)

        [suggestion] = learned_suggestions(session, incident)
        assert suggestion.tag == UNIT and suggestion.source_ids == (first, second)
        assert suggestion.confidence == pytest.approx(1 - (1 - CONFIRM_WEIGHT) ** 2)
        assert suggestion.reason.startswith(f"confirmed on #{first} and #{second}, which had the same drifted "
                                            "features and detectors (features f1, f2; detectors native_drift, "
                                            "out_of_range)")
        # The diagnosis stores it like any suggestion: a suggested tag with its score, reason and signature.
        reevaluate.apply(session, incident, as_suggestions(session, incident), utcnow(), created=False)
        reevaluate.apply(session, incident, as_suggestions(session, incident), utcnow(), created=False)
        refresh_document(session, incident)
        session.commit()
        stored = session.exec(select(IncidentTag).where(IncidentTag.incident_id == new)).one()  # not added twice
        assert (stored.tag, stored.confidence, stored.signature) == (UNIT, "suggested", LEARNED)
        assert stored.score == suggestion.confidence and stored.reason == suggestion.reason
        entry = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == new)).one()
        assert entry.kind == "tag" and f"#{first} and #{second}" in entry.text


def test_later_incidents_and_unresembling_ones_do_not_count(db: Engine) -> None:
    with Session(db) as session:
        new = _incident(session, UNIT_CHANGE, 5)
        later = _incident(session, UNIT_CHANGE, 9)  # opened after the new one: not its history
        unlike = _incident(session, {"missing_values": ["f4"]}, 1)
        _decide(session, later, UNIT, "confirmed")
        _decide(session, unlike, PIPELINE, "confirmed")
        assert learned_suggestions(session, get_incident(session, new)) == []


def test_no_learned_suggestion_without_confirmed_history(db: Engine) -> None:
    with Session(db) as session:
        past = _incident(session, UNIT_CHANGE, 1)
        session.add(IncidentTag(incident_id=past, tag=UNIT))  # suggested by a detector, never confirmed
        session.flush()
        refresh_document(session, get_incident(session, past))
        new = _incident(session, UNIT_CHANGE, 2)
        assert learned_suggestions(session, get_incident(session, new)) == []
        assert as_suggestions(session, get_incident(session, new)) == []
        session.commit()


def test_a_rejection_on_similar_evidence_lowers_the_suggestion(db: Engine) -> None:
    with Session(db) as session:
        confirmed = _incident(session, UNIT_CHANGE, 1)
        # One more feature fired: similar (5 of 6 signature items shared), not the same fingerprint.
        rejected = _incident(session, {"native_drift": ["f1", "f2", "f3"], "out_of_range": ["f1", "f2"]}, 2)
        _decide(session, confirmed, UNIT, "confirmed")
        _decide(session, rejected, UNIT, "rejected")
        new = _incident(session, UNIT_CHANGE, 3)
        [suggestion] = learned_suggestions(session, get_incident(session, new))
        assert suggestion.rejected_ids == (rejected,)
        assert suggestion.confidence == pytest.approx(round(CONFIRM_WEIGHT * (1 - REJECT_WEIGHT * 5 / 6), 3))
        assert suggestion.confidence < CONFIRM_WEIGHT
        assert f"rejected on #{rejected} with similar evidence" in suggestion.reason


def test_a_rejection_on_the_same_fingerprint_vetoes_unless_outnumbered(db: Engine) -> None:
    with Session(db) as session:
        confirmed = _incident(session, UNIT_CHANGE, 1)
        rejected = _incident(session, UNIT_CHANGE, 2)
        _decide(session, confirmed, UNIT, "confirmed")
        _decide(session, rejected, UNIT, "rejected")
        new = _incident(session, UNIT_CHANGE, 3)
        assert learned_suggestions(session, get_incident(session, new)) == []  # one yes, one no: vetoed

        again = _incident(session, UNIT_CHANGE, 4)
        _decide(session, again, UNIT, "confirmed")
        newest = _incident(session, UNIT_CHANGE, 5)
        [suggestion] = learned_suggestions(session, get_incident(session, newest))  # two yes, one no: lowered
        assert suggestion.source_ids == (confirmed, again) and suggestion.rejected_ids == (rejected,)
        assert suggestion.confidence == pytest.approx(round((1 - (1 - CONFIRM_WEIGHT) ** 2) * (1 - REJECT_WEIGHT), 3))
        session.commit()


def test_rejections_of_a_signature_s_tag_count_against_its_next_suggestion(db: Engine) -> None:
    """People rejected the unit-change tag twice where the unit_change signature suggested it: the next
    suggestion from that signature is lowered (one rejection) and then dropped (rejections outnumber)."""
    suggestion = Suggestion(UNIT, 0.8, "f1 looks like the reference x1000", "unit_change")
    with Session(db) as session:
        first = _incident(session, UNIT_CHANGE, 1)
        session.add(IncidentTag(incident_id=first, tag=UNIT, signature="unit_change", score=0.8))
        session.flush()
        _decide(session, first, UNIT, "rejected")
        new = get_incident(session, _incident(session, UNIT_CHANGE, 5))
        [lowered] = weigh(session, new, [suggestion])
        assert lowered.confidence == pytest.approx(0.4)
        assert f"rejected it for this signature on #{first}" in lowered.reason
        other = Suggestion(UNIT, 0.8, "another signature's reason", "skew")  # another signature: untouched
        assert weigh(session, new, [other]) == [other]

        second = _incident(session, UNIT_CHANGE, 2)
        session.add(IncidentTag(incident_id=second, tag=UNIT, signature="unit_change", score=0.8))
        session.flush()
        _decide(session, second, UNIT, "rejected")
        assert weigh(session, new, [suggestion]) == []  # 0.8 / 3 < MIN_CONFIDENCE
        session.commit()
