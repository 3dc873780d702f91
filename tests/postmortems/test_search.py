"""Incidents are found by words and tags, over the JSON API and on the server-rendered page."""

import httpx
import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.factories import BuiltModels
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

DRIFT = [{"detectors": [{"name": "stat_drift"}], "min_events": 100}]


def _incident(client: TestClient, runtime: Runtime, models: BuiltModels, name: str) -> int:
    factories.register_tensor(client, models, name=name, monitors=DRIFT)
    factories.serve(client, name, factories.make_frame(200, seed=5, shift=1.0))
    result = run_monitor(runtime, name, "default")
    assert result.incident_id is not None
    return result.incident_id


@pytest.mark.usefixtures("act_on_any_breach")
def test_search_api_by_words_and_tag(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    churn = _incident(client, runtime, models, "churn")
    fraud = _incident(client, runtime, models, "fraud-score")

    def ids(**params: str) -> list[int]:
        response = client.get("/incidents", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["hits"]]

    assert ids() == [fraud, churn]
    assert ids(q="churn") == [churn]
    assert ids(q="FRAUD f1") == [fraud]
    assert ids(q="churn nonexistentword") == []
    assert ids(tag="feature-distribution-shift") == [fraud, churn]
    assert ids(tag="kpi-degradation") == []
    assert ids(model="churn") == [churn]
    assert ids(q="100%_") == []
    bad = client.get("/incidents", params={"tag": "not-a-tag"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.tag"
    assert client.get("/incidents/999999").status_code == 404


@pytest.mark.usefixtures("act_on_any_breach")
def test_search_page_over_http(client: TestClient, runtime: Runtime, models: BuiltModels, live_server: str) -> None:
    incident = _incident(client, runtime, models, "churn")
    http = httpx.Client(headers=client.headers)  # the admin token: reads need a role
    page = http.get(f"{live_server}/postmortems", params={"q": "churn", "tag": "feature-distribution-shift"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'href="/postmortems/incidents/{incident}"' in page.text and "1 incident" in page.text
    empty = http.get(f"{live_server}/postmortems", params={"q": "<b>nothing</b>"})
    assert "No incident matches." in empty.text
    assert "&lt;b&gt;nothing&lt;/b&gt;" in empty.text and "<b>nothing</b>" not in empty.text
    detail = http.get(f"{live_server}/postmortems/incidents/{incident}")
    assert detail.status_code == 200
    for text in ("SEV3", "open", "feature-distribution-shift", "pause_pipeline", "swap_model", "f1", "f2"):
        assert text in detail.text, text
