"""Schemathesis against the app's own OpenAPI schema, over real HTTP, on both databases.

Every operation gets valid and invalid input, from a fixed seed per database (the two databases get different
cases: together they send each operation twice the per-database budget); about half the cases of an operation
get the seeded names and ids in their path instead of generated ones, so they reach real rows. A stateful run
then follows the links schemathesis infers between operations (an incident filed, then read, edited and moved).
Fails on any 5xx, on any response the schema does not document (status, content type, body, headers), and
when, afterwards, anything stored can no longer be read (a committed bad PATCH once broke an incident's pages).

WATCHTOWER_FUZZ_EXAMPLES raises the budget for a longer hunt; WATCHTOWER_FUZZ_REPORT names a file that gets
every failure in full.
"""

import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine

from tests import factories
from tests.conftest import TOKEN
from watchtower.settings import Settings

# Per operation and database. 20 on each of two seeds = the 40 distinct cases per operation this test used to
# send, identically, to both databases: the suite's longest test, halved.
EXAMPLES = int(os.environ.get("WATCHTOWER_FUZZ_EXAMPLES", "20"))
SEEDS = {"sqlite": 40_001, "postgresql": 40_002}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture(name="settings")
def patient_readiness(settings: Settings) -> Settings:
    """Readiness must not hang on how long the fuzzing takes on a busy machine: /readyz turns 503 once the
    seeded model's monitor has had no pass for 3 intervals, which a 10-minute run reaches by itself."""
    return settings.model_copy(update={"ready_stale_intervals": 1000})


def seed_rows(client: TestClient, models: factories.BuiltModels) -> dict[str, Any]:
    """Real objects for the generated paths to land on: a model with predictions and labels, incidents."""
    factories.register_tensor(client, models, "churn")
    factories.serve(client, "churn", factories.make_frame(60, seed=3), labels=True)
    ids = []
    for title in ("Churn drifted", "Churn drifted again"):
        filed = client.post("/incidents", json={"title": title, "author": "ana", "models": ["churn"],
                                                "tags": ["concept-drift"], "impact_numbers": {"users": 10}})
        assert filed.status_code == 201, filed.text
        ids.append(filed.json()["id"])
    item = client.post(f"/incidents/{ids[0]}/action-items", json={"author": "ana", "title": "Retrain"})
    assert item.status_code == 201, item.text
    return {"name": "churn", "monitor": "default", "incident_id": ids[0], "other_id": ids[1],
            "item_id": item.json()["id"], "tag": "concept-drift", "stage": "training"}


def http(url: str) -> requests.Session:
    """One keep-alive session, as real clients use, with the admin token (reads need a role too)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def fuzz_operations(url: str, known: dict[str, Any], failures: list[str], cases_seed: int) -> int:
    """Every operation, positive and negative input; returns how many requests were sent."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    session, sent = http(url), 0
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]

        @seed(cases_seed)
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), use_known=st.booleans())
        def run(case: Any, use_known: bool) -> None:
            nonlocal sent
            if use_known:
                for parameter in case.path_parameters or {}:
                    if parameter in known:
                        case.path_parameters[parameter] = known[parameter]
            sent += 1
            collect(failures, case.operation.label,
                    lambda: case.call_and_validate(base_url=url, session=session, checks=CHECKS))

        run()
    return sent


def fuzz_links(url: str, failures: list[str], cases_seed: int) -> int:
    """Sequences that feed one response's ids into the next request (links schemathesis infers)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    session, sent = http(url), 0

    @seed(cases_seed)
    class Links(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            nonlocal sent
            sent += 1
            return {"base_url": url, "session": session}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            collect(failures, f"stateful {case.operation.label}",
                    lambda: case.validate_response(response, checks=CHECKS))

    Links.run(settings=settings(max_examples=max(EXAMPLES // 2, 3), stateful_step_count=8, deadline=None,
                                database=None, suppress_health_check=list(HealthCheck)))
    return sent


def collect(failures: list[str], label: str, call: Callable[[], object]) -> None:
    try:
        call()
    except (FailureGroup, Failure) as exc:  # keep going: one run reports every cause
        failures.append(f"{label}: {str(exc).strip()}")


def stored_rows_still_read(url: str) -> list[str]:
    """Every incident, its write-up, export and pages, and every model still answer 200 after the fuzzing."""
    session, broken = http(url), []
    urls = ["/incidents?limit=200", "/postmortems", "/models", "/pipelines", "/analytics"]
    for hit in session.get(f"{url}/incidents", params={"limit": 200}).json()["hits"]:
        base = f"/incidents/{hit['id']}"
        urls += [base, f"{base}/writeup", f"{base}/export", f"{base}/export?format=markdown",
                 f"/postmortems/incidents/{hit['id']}"]
    urls += [f"/models/{m['name']}/checks" for m in session.get(f"{url}/models").json()]
    for path in urls:
        status = session.get(f"{url}{path}").status_code
        if status != 200:
            broken.append(f"GET {path}: {status} after the fuzzing" + (" (Server error)" if status >= 500 else ""))
    return broken


@pytest.mark.filterwarnings("ignore")
def test_no_5xx_and_every_response_documented(live_server: str, client: TestClient, db: Engine,
                                              models: factories.BuiltModels) -> None:
    known = seed_rows(client, models)
    cases_seed = SEEDS[db.dialect.name]
    failures: list[str] = []
    sent = fuzz_operations(live_server, known, failures, cases_seed)
    sent += fuzz_links(live_server, failures, cases_seed)
    failures += stored_rows_still_read(live_server)
    five_hundreds = sum("Server error" in f for f in failures)
    print(f"fuzzed {sent} requests: {len(failures)} failures, {five_hundreds} with a 5xx")  # noqa: T201
    if report := os.environ.get("WATCHTOWER_FUZZ_REPORT"):
        with open(report, "a") as out:
            out.write(f"== {sent} requests, {len(failures)} failures\n" + "\n\n".join(failures) + "\n")
    assert sent > 0
    assert failures == [], "\n\n".join(failures[:20])
