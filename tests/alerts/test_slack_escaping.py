"""User-controlled text reaches Slack inert: a feature, title or label such as `<!channel> <https://...|...>`
neither pings a channel nor forges a link. Real monitor pass and Alertmanager receiver, real slack-sdk client,
the conftest recorder as Slack, on SQLite and PostgreSQL."""

from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests import factories
from tests.alerts.test_alertmanager import alert, notification
from tests.conftest import SlackRecorder
from watchtower.delivery import deliver_outbox
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

EVIL = "<!channel> <https://evil.example/login|Open incident #1> & co"
ESCAPED = "&lt;!channel&gt; &lt;https://evil.example/login|Open incident #1&gt; &amp; co"


def _texts(value: Any) -> list[str]:
    """Every string Slack renders as mrkdwn in a call body (text, blocks, context elements)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() if k not in ("url", "value", "action_id") for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


def _assert_inert(slack: SlackRecorder) -> None:
    texts = [t for call in slack.calls for t in _texts(call["body"])]
    assert any(ESCAPED in t for t in texts), texts  # the name did reach Slack, escaped
    for text in texts:
        assert "<!channel>" not in text and "<https://evil.example" not in text, text


def _slack(runtime: Runtime, slack: SlackRecorder) -> None:
    runtime.settings.slack_token, runtime.settings.slack_base_url = SecretStr("xoxb-test"), slack.base_url


def test_a_drifting_feature_named_like_a_ping_and_a_link_is_escaped(
        client: TestClient, runtime: Runtime, models: factories.BuiltModels, slack: SlackRecorder,
        act_on_any_breach: None) -> None:
    _slack(runtime, slack)
    renamed = {"f1": EVIL}
    spec = factories.tensor_spec("churn", monitors=[{"detectors": [{"name": "stat_drift"}], "min_events": 100}])
    spec["features"][0]["name"] = EVIL
    registered = factories.register(client, spec, models.tensor_primary, models.tensor_fallback,
                                    models.reference.rename(columns=renamed))
    assert registered.status_code == 201, registered.text
    shifted = factories.make_frame(300, seed=5, shift=3.0).rename(columns=renamed)
    factories.serve(client, "churn", shifted, columns=[EVIL, "f2", "f3", "f4"])
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "breached" and result.incident_id is not None
    assert deliver_outbox(runtime) >= 1
    _assert_inert(slack)


def test_alertmanager_labels_and_summaries_are_escaped(client: TestClient, runtime: Runtime,
                                                       slack: SlackRecorder) -> None:
    _slack(runtime, slack)
    received = client.post("/alertmanager", json=notification(alert("e1", model=EVIL), summary=EVIL))
    assert received.status_code == 200 and received.json()["page"] == "queued", received.text
    assert deliver_outbox(runtime) >= 1
    _assert_inert(slack)
