"""Silences: each matcher operator matching and not matching, the API (states, expiry, 422s naming the field),
`silenced` over several label sets, `silence_incident`, and real monitor passes whose page a silence holds."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.silences import Matcher, silence_incident, silenced
from alerts.silences.matchers import matches_all
from alerts.silences.models import Silence
from postmortems.models import Incident, TimelineEntry
from tests import factories
from tests.factories import BuiltModels
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LABELS = {"model": "churn", "monitor": "default", "detector": "stat_drift", "kind": "input_drift",
          "feature": "f1", "severity": "SEV3"}
DRIFT = [{"detectors": [{"name": "stat_drift"}], "min_events": 100}]
PAGE_AT_ONCE = {"grouping": "model_monitor", "recovery": None,
                "rules": [{"name": "drift", "actions": ["open_incident", "notify"], "severity": "SEV3"}]}


@pytest.mark.parametrize(("op", "value", "hit", "miss"), [
    ("=", "churn", "churn", "churn-v2"),
    ("!=", "churn", "fraud", "churn"),
    ("=~", "chu.*", "churn", "old-churn"),  # fully anchored: a regex matches the whole value, not a part
    ("!~", "fr.*", "churn", "fraud"),
])
def test_each_operator_matches_one_label_set_and_not_another(op: str, value: str, hit: str, miss: str) -> None:
    matcher = Matcher.of("model", op, value)
    assert str(matcher) == f'model{op}"{value}"'
    assert matcher.matches(LABELS | {"model": hit})
    assert not matcher.matches(LABELS | {"model": miss})


def test_a_missing_label_matches_as_empty_and_matchers_are_anded() -> None:
    assert Matcher.of("feature", "=", "").matches({"model": "churn"})
    assert Matcher.of("feature", "!~", ".+").matches({"model": "churn"})
    assert not Matcher.of("feature", "=~", ".+").matches({"model": "churn"})
    both = [Matcher.of("model", "=", "churn"), Matcher.of("feature", "=~", "f[12]")]
    assert matches_all(both, LABELS) and not matches_all(both, LABELS | {"feature": "f3"})
    with pytest.raises(ValueError, match="unknown operator"):
        Matcher.of("model", "==", "churn")


def _silence(client: TestClient, *matchers: tuple[str, str, str], hours: float = 1, starts_in_h: float = 0,
             author: str = "ada", comment: str = "retraining churn") -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {"matchers": [Matcher.of(*m).model_dump() for m in matchers], "created_by": author, "comment": comment,
            "starts_at": (now + timedelta(hours=starts_in_h)).isoformat(),
            "ends_at": (now + timedelta(hours=starts_in_h + hours)).isoformat()}
    response = client.post("/silences", json=body)
    assert response.status_code == 201, response.text
    silence: dict[str, Any] = response.json()
    return silence


def test_the_api_lists_by_state_expires_and_refuses_bad_silences_naming_the_field(client: TestClient) -> None:
    active = _silence(client, ("model", "=", "churn"), ("feature", "=~", "f[12]"))
    assert active["status"] == "active" and active["created_by"] == "ada"
    assert [(m["name"], m["op"], m["value"]) for m in active["matchers"]] == [
        ("model", "=", "churn"), ("feature", "=~", "f[12]")]
    pending = _silence(client, ("model", "=", "fraud"), starts_in_h=2)
    assert pending["status"] == "pending"
    assert [s["id"] for s in client.get("/silences", params={"state": "active"}).json()] == [active["id"]]
    assert [s["id"] for s in client.get("/silences", params={"state": "pending"}).json()] == [pending["id"]]
    assert {s["id"] for s in client.get("/silences").json()} == {active["id"], pending["id"]}

    expired = client.delete(f"/silences/{active['id']}", params={"author": "grace"})
    assert expired.status_code == 200, expired.text
    assert expired.json()["status"] == "expired" and expired.json()["expired_by"] == "grace"
    assert client.delete(f"/silences/{pending['id']}").json()["status"] == "expired"  # a pending one never starts
    assert client.get("/silences", params={"state": "active"}).json() == []
    assert [s["id"] for s in client.get("/silences", params={"state": "expired"}).json()] == [
        pending["id"], active["id"]]
    again = client.delete(f"/silences/{active['id']}")
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert client.delete("/silences/999999").status_code == 404
    assert client.post("/silences", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.delete(f"/silences/{pending['id']}", headers={"Authorization": "Bearer wrong"}).status_code == 401

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    good = {"matchers": [{"name": "model", "value": "churn"}], "ends_at": later, "created_by": "ada", "comment": "x"}
    for change, field, words in [
        ({"matchers": [{"name": "model", "value": "chu(rn", "is_regex": True}]}, "body.matchers.0.value",
         "bad regular expression 'chu(rn'"),
        ({"matchers": [{"name": "team", "value": "ml"}]}, "body.matchers.0.name", "model"),
        ({"matchers": [{"name": "model", "value": ".*", "is_regex": True}]}, "body.matchers", "every page"),
        ({"matchers": []}, "body.matchers", "at least 1"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "body.ends_at", "past"),
        ({"starts_at": later, "ends_at": later}, "body", "after starts_at"),
        ({"comment": ""}, "body.comment", "at least 1"),
        ({"comment": "a\x00b"}, "body.comment", ""),  # PostgreSQL stores no NUL: a 500 the fuzzer found
        ({"matchers": [{"name": "model", "value": "ch\x00urn"}]}, "body.matchers.0.value", ""),
        ({"author": "ada"}, "body.author", "Extra inputs"),
    ]:
        response = client.post("/silences", json=good | change)
        assert response.status_code == 422, (change, response.text)
        errors = response.json()["errors"]
        assert any(e["field"] == field and words in e["reason"] for e in errors), (change, errors)
    bad_state = client.get("/silences", params={"state": "asleep"})
    assert bad_state.status_code == 422 and bad_state.json()["errors"][0]["field"] == "query.state"


def test_silenced_needs_every_label_set_matched_by_an_active_silence(db: Engine) -> None:
    def add(session: Session, matchers: list[Matcher], start: datetime, end: datetime) -> Silence:
        silence = Silence(matchers=[m.model_dump() for m in matchers], starts_at=start, ends_at=end,
                          created_by="ada", comment="test")
        session.add(silence)
        session.flush()
        return silence

    with Session(db) as session:
        drift = add(session, [Matcher.of("model", "=", "churn"), Matcher.of("kind", "=", "input_drift")],
                    NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        add(session, [Matcher.of("detector", "=", "missing_values")], NOW + timedelta(minutes=1),
            NOW + timedelta(hours=1))  # pending at NOW
        add(session, [Matcher.of("model", "=~", ".+")], NOW - timedelta(hours=2), NOW)  # expired at NOW
        f1, f2 = LABELS, LABELS | {"feature": "f2"}
        quality = LABELS | {"detector": "missing_values", "kind": "data_quality", "feature": "f3"}
        assert silenced(session, [f1, f2], NOW) == drift
        assert silenced(session, [f1, quality], NOW) is None  # one finding is not silenced: the page goes out
        assert silenced(session, [LABELS | {"model": "fraud"}], NOW) is None
        assert silenced(session, [], NOW) is None
        assert silenced(session, [quality], NOW + timedelta(minutes=2)) is not None  # the pending one has begun
        assert silenced(session, [f1], NOW + timedelta(hours=1)) is None  # ends_at is exclusive


def _timeline(engine: Engine, incident_id: int, kind: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(TimelineEntry.text).where(
            TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind).order_by(col(TimelineEntry.id))))


def _metric(runtime: Runtime, name: str, model: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, {"model": model}) or 0.0


def test_a_silenced_breach_is_recorded_but_pages_nobody_and_pages_once_the_silence_ends(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT)
    assert client.put("/models/churn/policy", json=PAGE_AT_ONCE).status_code == 200
    factories.serve(client, "churn", factories.make_frame(300, seed=6, shift=1.5))  # f1 and f2 drift
    # Each of these misses on exactly one matcher (one per operator): none holds the page.
    all_four = [("model", "=", "churn"), ("monitor", "!=", "other"), ("detector", "=~", "stat_.*"),
                ("feature", "!~", "f9")]
    misses = [("model", "=", "fraud"), ("monitor", "!=", "default"), ("detector", "=~", "stat"),
              ("feature", "!~", "f[0-9]")]
    for i, miss in enumerate(misses):
        _silence(client, *[miss if j == i else m for j, m in enumerate(all_four)], comment=f"near miss {i}")
    first = run_monitor(runtime, "churn", "default")
    assert first.incident_id is not None and len(factories.queued_pages(db)) == 1
    decision = client.get("/models/churn/decisions").json()[0]
    assert [(a["action"], a["outcome"]) for a in decision["actions"]] == [("open_incident", "done"), ("notify", "done")]
    resolved = client.post(f"/incidents/{first.incident_id}/status", json={"status": "resolved", "author": "ada"})
    assert resolved.status_code == 200, resolved.text

    silence = _silence(client, *all_four, author="ada", comment="retraining churn")
    second = run_monitor(runtime, "churn", "default")
    assert second.incident_id is not None and second.incident_id != first.incident_id
    assert len(factories.queued_pages(db)) == 1  # no new page
    line = f"page silenced by silence #{silence['id']} (ada: retraining churn)"
    assert _timeline(db, second.incident_id, "silenced") == [line]
    assert _timeline(db, second.incident_id, "breach")  # the breach itself is on the incident
    decision = client.get("/models/churn/decisions").json()[0]
    assert [(a["action"], a["outcome"]) for a in decision["actions"]] == [
        ("open_incident", "done"), ("notify", "silenced")]
    assert decision["actions"][1]["detail"] == line and decision["incident_id"] == second.incident_id
    assert _metric(runtime, "watchtower_breaches_silenced_total", "churn") == 1
    exposed = client.get("/metrics").text
    assert 'watchtower_breaches_silenced_total{model="churn"} 1.0' in exposed

    assert client.delete(f"/silences/{silence['id']}").status_code == 200
    third = run_monitor(runtime, "churn", "default")
    # Held, never sent: it pages now.
    assert third.incident_id == second.incident_id and len(factories.queued_pages(db)) == 2
    fourth = run_monitor(runtime, "churn", "default")
    assert fourth.incident_id == second.incident_id and len(factories.queued_pages(db)) == 2  # and only once
    assert _metric(runtime, "watchtower_breaches_silenced_total", "churn") == 1


def test_silence_incident_silences_the_incidents_model_and_says_so_on_its_timeline(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT)
    assert client.put("/models/churn/policy", json=PAGE_AT_ONCE).status_code == 200
    factories.serve(client, "churn", factories.make_frame(300, seed=6, shift=1.5))
    incident_id = run_monitor(runtime, "churn", "default").incident_id
    assert incident_id is not None
    with Session(db) as session:
        silence_id = silence_incident(session, incident_id, 4, "grace")
        session.commit()
        silence = session.get(Silence, silence_id)
        assert silence is not None and silence.incident_id == incident_id and silence.created_by == "grace"
        assert silence.ends_at - silence.starts_at == timedelta(hours=4)
        incident = session.get(Incident, incident_id)
        assert incident is not None
        assert silence.comment == f"Silenced from incident #{incident_id}: {incident.title}"
        assert silenced(session, [LABELS], silence.starts_at) == silence
        assert silenced(session, [LABELS | {"model": "fraud"}], silence.starts_at) is None
    [entry] = _timeline(db, incident_id, "silence")
    assert entry.startswith(f"Pages for model churn silenced for 4 h by grace (silence #{silence_id}")
    listed = client.get("/silences", params={"state": "active"}).json()
    assert [(s["id"], s["incident_id"], s["matchers"][0]["value"]) for s in listed] == [
        (silence_id, incident_id, "churn")]

    manual = client.post("/incidents", json={"title": "Two models down", "author": "ada", "models": ["a", "b"]})
    with Session(db) as session:
        for incident, hours, reason in [(manual.json()["id"], 1, "no single model"), (incident_id, 0, "hours"),
                                        (999999, 1, "no incident")]:
            with pytest.raises(Exception, match=reason):
                silence_incident(session, incident, hours, "grace")
