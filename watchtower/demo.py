"""`watchtower demo`: a real model breaks and Watchtower detects it, mitigates, opens an incident and alerts.

Everything goes through the real HTTP API of a server started in this process, on the
database the settings name (the embedded SQLite file by default).
"""

import secrets
import socket
import threading
import time
from datetime import date, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn
from pydantic import SecretStr
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from alerts.slack.messages import preview
from alerts.slack.store import IncidentMessages
from watchtower.app import create_app
from watchtower.db import make_engine, migrate
from watchtower.delivery import deliver_outbox
from watchtower.modelkit import tensor_classifier
from watchtower.monitor import run_monitor
from watchtower.settings import Settings

FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "mean_concavity",
            "worst_radius", "worst_texture", "worst_smoothness", "worst_concavity"]
# A broken upstream unit change and a sensor offset: what the shifted traffic simulates.
SHIFT = {"mean_radius": ("×", 1.35), "worst_radius": ("×", 1.35), "mean_texture": ("+", 6.0)}


def say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(settings: Settings) -> int:
    """Run the whole story; return the exit code."""
    started = time.perf_counter()
    token = settings.api_token.get_secret_value() if settings.api_token else secrets.token_urlsafe(16)
    settings = settings.model_copy(update={"api_token": SecretStr(token), "scheduler_enabled": False})
    engine = make_engine(settings.database_url)
    migrate(engine)
    app = create_app(settings, engine)
    server, base = _start_server(app)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as api:
            _story(api, app.state.runtime)
    finally:
        server.should_exit = True
    say(f"\nDone in {time.perf_counter() - started:.0f} s. Database: {settings.database_url}")
    return 0


def _story(api: httpx.Client, runtime: Any) -> None:
    data = load_breast_cancer(as_frame=True)
    x = data.frame[[f.replace("_", " ") for f in FEATURES]].set_axis(FEATURES, axis=1)
    y = data.target
    x_train, x_live, y_train, y_live = train_test_split(x, y, test_size=0.4, random_state=7, stratify=y)
    say("1. Training a random forest (primary) and a logistic regression (fallback) on the breast-cancer "
        "dataset that scikit-learn ships, and converting both to ONNX.")
    primary, fallback = tensor_classifier(x_train, y_train), tensor_classifier(x_train, y_train, simple=True)

    name = _free_name(api, "cancer-screening")
    reference = x_train.assign(diagnosis=y_train.to_numpy()).to_csv(index=False).encode()
    spec = {"name": name, "task": "classification", "target": "diagnosis",
            "features": [{"name": f, "type": "numeric"} for f in FEATURES],
            "monitors": [{"name": "default", "min_events": 100, "interval_s": 60}]}
    response = api.post("/models", data={"spec": _json(spec)}, files={
        "primary": ("primary.onnx", primary.onnx), "fallback": ("fallback.onnx", fallback.onnx),
        "reference": ("reference.csv", reference)})
    _ok(response)
    say(f"2. Registered model '{name}' with {len(x_train)} reference rows; serving "
        f"{response.json()['active_version']}.")
    say(f"   On call: {_oncall(api, name)}")

    rng = np.random.default_rng(1)
    healthy = x_live.sample(frac=1.0, random_state=1)  # unseen rows from the same population
    _serve(api, name, healthy, y_live.loc[healthy.index])
    say(f"3. Served {len(healthy)} healthy predictions through POST /models/{name}/predict, labels sent.")
    result = run_monitor(runtime, name, "default")
    say(f"4. Monitor pass on healthy traffic: {result.status}. " + _drift_line(result))

    shifted = x_live.sample(n=400, replace=True, random_state=2)
    for feature, (op, amount) in SHIFT.items():
        shifted[feature] = shifted[feature] * amount if op == "×" else shifted[feature] + amount
    shifted = shifted + rng.normal(0, 1e-6, shifted.shape)
    changes = ", ".join(f"{f} {op}{amount:g}" for f, (op, amount) in SHIFT.items())
    policy = api.get(f"/models/{name}/policy").json()
    say(f"5. The response policy ({policy['scope']} default): "
        + "; ".join(f"{r['name']} -> {', '.join(r['actions'])} after {r['confirm']['k']} of "
                    f"{r['confirm']['n']} passes" for r in policy["policy"]["rules"]) + ".")
    for step, half in ((6, shifted.iloc[:200]), (7, shifted.iloc[200:])):
        _serve(api, name, half, y_live.loc[half.index])
        result = run_monitor(runtime, name, "default")
        say(f"{step}. Served {len(half)} shifted predictions ({changes}), labels sent. Monitor pass: "
            f"{result.status.upper()}. " + _drift_line(result))
        for outcome in result.outcomes:
            if outcome.detector == "accuracy" and outcome.findings:
                f = outcome.findings[0]
                say(f"   accuracy {f.score:.3f} vs floor {f.threshold:.3f} "
                    f"(reference {f.extra.get('reference_accuracy', float('nan')):.3f}): "
                    f"{'BREACHED' if f.breached else 'ok'}")
        say(f"   Policy: {result.plan.explain() if result.plan else 'no decision'}.")
        if result.plan and not result.plan.actions:
            say("   Nothing done yet: one window is not proof.")
    if result.incident_id is None:
        say("   No rule fired: nothing was done.")
        return

    incident = api.get(f"/incidents/{result.incident_id}").json()
    say("8. What Watchtower did:")
    for entry in incident["timeline"]:
        say(f"   - [{entry['kind']}] {entry['text']}")
    pipeline = api.get(f"/pipelines/{name}").json()
    say(f"   Pipeline '{pipeline['name']}' paused: {pipeline['paused']} (pipelines poll GET /pipelines/{name}).")
    after = api.post(f"/models/{name}/predict", json={"instances": [x_live.iloc[0].to_dict()]}).json()
    say(f"   The next prediction was served by {after['version']} ({after['role']}).")
    sent = deliver_outbox(runtime)
    slack = "sent to Slack" if sent else "logged (no WATCHTOWER_SLACK_TOKEN set, so Slack was not called)"
    say(f"9. Alert {slack}.")
    if not sent:  # what the Slack message would have been, buttons included
        store = IncidentMessages(runtime.engine, public_url=runtime.settings.public_url,
                                 oncall=runtime.settings.oncall_slack_user)
        for line in preview(store.render(incident["id"], runtime.settings.slack_channel)):
            say(f"   {line}")
    paged = [m for m in api.get("/outbox", params={"incident_id": incident["id"]}).json()["items"]
             if "You are paged" in m["summary"]]
    for message in paged:  # the DMs of the escalation's first step
        say(f"   Paged {message['target']} by DM: {message['summary']}")
    say(f"\nIncident #{incident['id']} [{incident['severity']}]: {incident['title']}")
    say(f"   suggested tags: {', '.join(t['tag'] for t in incident['tags'])}")
    spans = incident["durations"]
    say(f"   time to detect {spans['time_to_detect']:.0f} s (from when the window's first event was served), "
        f"time to mitigate {spans['time_to_mitigate']:.0f} s")
    say(f"   page: {incident['url']}  (run `watchtower serve` to open it)")
    password = _note_from_the_page(api, incident["id"])
    say(f"   dana signed in on the pages with her password (a server-side session) and noted the incident from "
        f"its page; after `watchtower serve`, sign in at /auth/login as dana with password {password}")
    if after["role"] != "fallback":
        return
    _ok(api.post(f"/models/{name}/restore", json={"author": "demo-operator",
                                                 "reason": "primary checked by hand; keep it while we investigate"}))
    say(f"10. An operator restores the primary (POST /models/{name}/restore). The window still holds the bad rows:")
    result = run_monitor(runtime, name, "default")
    held = [a["detail"] for a in api.get(f"/models/{name}/decisions", params={"limit": 1}).json()[0]["actions"]
            if a["outcome"] == "held"]
    served = api.post(f"/models/{name}/predict", json={"instances": [x_live.iloc[0].to_dict()]}).json()
    say(f"    next pass {result.status.upper()}: {held[0] if held else 'nothing held'}.")
    say(f"    Still served by {served['version']}: the decision sticks until incident #{incident['id']} is resolved "
        f"or someone re-arms it (POST /models/{name}/holds/swap_model/rearm).")


def _oncall(api: httpx.Client, model: str) -> str:
    """A person on a weekly rotation and an escalation policy paging whoever is on call, routed to the model
    (and the default if there is none yet). Kept on later runs: a second run finds them."""
    api.post("/users", json={"handle": "dana", "display_name": "Dana", "slack_user_id": "U0DEMODANA",
                          "role": "responder"})  # on call: she answers incidents (409 when kept from a run before)
    if not any(s["name"] == "demo-ml" for s in api.get("/schedules").json()):
        created = api.post("/schedules", json={"name": "demo-ml", "time_zone": "Europe/Berlin"})
        _ok(created)
        _ok(api.post(f"/schedules/{created.json()['id']}/rotations", json={
            "name": "weekly", "participants": ["dana"], "unit": "weeks", "shift_length": 1, "handoff": "09:00",
            "start": (date.today() - timedelta(days=14)).isoformat()}))
    if api.get("/escalation-policies/demo-ml").status_code == 404:
        first = not any(p["default"] for p in api.get("/escalation-policies").json())
        _ok(api.post("/escalation-policies", json={"name": "demo-ml", "default": first, "repeat": 1, "steps": [
            {"targets": [{"schedule": "demo-ml"}], "delay_minutes": 15},
            {"targets": [{"channel": "#ml-leads"}], "delay_minutes": 30}]}))
    _ok(api.put(f"/models/{model}/escalation", json={"policy": "demo-ml"}))
    return ("schedule 'demo-ml' (Dana, weekly); escalation policy 'demo-ml': page whoever is on call, "
            "after 15 min #ml-leads, 30 min later the whole chain once more (see /oncall/escalation).")


def _note_from_the_page(api: httpx.Client, incident_id: int) -> str:
    """Give dana a fresh password, sign her in through the sign-in form as a browser would, and add a note
    through the incident page's form (with its CSRF token); return the password."""
    password = secrets.token_urlsafe(12)
    _ok(api.put("/auth/users/dana/password", json={"password": password}))
    with httpx.Client(base_url=api.base_url, timeout=60) as browser:  # no bearer token: cookies only
        form = browser.get("/auth/login")
        signed_in = browser.post("/auth/login", data={"handle": "dana", "password": password,
                                                      "csrf": _hidden(form.text, "csrf")})
        if signed_in.status_code != 303:
            _ok(signed_in)
            raise SystemExit(f"signing dana in failed: {signed_in.status_code}")
        page = browser.get(f"/postmortems/incidents/{incident_id}")
        _ok(browser.post(f"/postmortems/incidents/{incident_id}/notes",
                         data={"csrf": _hidden(page.text, "csrf"), "text": "Looking at it (from the page)."}))
    return password


def _hidden(html: str, name: str) -> str:
    """The value of a form's hidden field."""
    marker = f'name="{name}" value="'
    return html.split(marker, 1)[1].split('"', 1)[0] if marker in html else ""


def _serve(api: httpx.Client, name: str, rows: pd.DataFrame, labels: pd.Series) -> None:
    for start in range(0, len(rows), 50):
        chunk = rows.iloc[start:start + 50]
        response = api.post(f"/models/{name}/predict", json={"instances": chunk.to_dict("records")})
        _ok(response)
        ids = [p["id"] for p in response.json()["predictions"]]
        _ok(api.post(f"/models/{name}/labels", json={"labels": [
            {"id": i, "label": int(label)} for i, label in zip(ids, labels.iloc[start:start + 50], strict=True)]}))


def _drift_line(result: Any) -> str:
    drift = [f for o in result.outcomes if o.detector == "native_drift" for f in o.findings]
    if not drift:
        return ""
    drifted = sorted((f for f in drift if f.breached), key=lambda f: f.score)
    if not drifted:
        lowest = min(drift, key=lambda f: f.score)
        return (f"No feature drifted (lowest KS p-value {lowest.score:.3f} on {lowest.feature}; threshold "
                f"{lowest.threshold:.4f}: 0.05 false-discovery rate, Benjamini-Hochberg over {len(drift)} features).")
    listed = ", ".join(f"{f.feature} (KS p={f.score:.1e})" for f in drifted)
    return f"{len(drifted)} of {len(drift)} features drifted: {listed}."


def _free_name(api: httpx.Client, base: str) -> str:
    taken = {m["name"] for m in api.get("/models").json()}
    return next(n for n in [base, *(f"{base}-{i}" for i in range(2, 1000))] if n not in taken)


def _start_server(app: Any) -> tuple[uvicorn.Server, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _ok(response: httpx.Response) -> None:
    if response.is_error:
        raise SystemExit(f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}")


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
