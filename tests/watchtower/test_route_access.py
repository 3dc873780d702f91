"""Every route of the app, called as anonymous, viewer, responder, admin and a pipeline token, on both
databases: the access check allows exactly what watchtower/auth/routes.py decides, and no route lacks a
decision. Path parameters name real rows, so what is tested is the access decision, not a 404."""

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests import factories
from tests.conftest import TOKEN, empty_tables
from tests.watchtower.auth_helpers import World, refused_by_access, seed
from watchtower.app import create_app
from watchtower.auth.access import routes_of
from watchtower.auth.roles import Role
from watchtower.auth.routes import rule_for
from watchtower.settings import Settings

# Who may call what, written out independently of watchtower/auth/routes.py: changing a decision means
# changing it in both places, on purpose. "+pipeline": a pipeline's token may call it for its own pipeline.
EXPECTED = """
    viewer           GET /
    responder        POST /alertmanager
    viewer           GET /analytics
    admin            GET /audit
    viewer           GET /docs
    public           GET /auth/login
    public           POST /auth/login
    public           POST /auth/logout
    public           POST /auth/change-password
    public           GET /static/{path}
    public           GET /static/swagger/{path}
    viewer           GET /auth/password
    viewer           POST /auth/password
    admin            PUT /auth/users/{handle}/password
    viewer           GET /escalation-policies
    admin            POST /escalation-policies
    admin            DELETE /escalation-policies/{name}
    viewer           GET /escalation-policies/{name}
    admin            PATCH /escalation-policies/{name}
    public           GET /healthz
    viewer           GET /incidents
    responder        POST /incidents
    admin            POST /incidents/import
    viewer           GET /incidents/{incident_id}
    responder        PATCH /incidents/{incident_id}
    responder        POST /incidents/{incident_id}/action-items
    responder        PATCH /incidents/{incident_id}/action-items/{item_id}
    viewer           GET /incidents/{incident_id}/escalation
    viewer           GET /incidents/{incident_id}/guard-proposals
    viewer           GET /incidents/{incident_id}/export
    responder        POST /incidents/{incident_id}/notes
    responder        POST /incidents/{incident_id}/resolve
    responder        POST /incidents/{incident_id}/similar/{other_id}/dismiss
    responder        POST /incidents/{incident_id}/status
    responder        PUT /incidents/{incident_id}/tags/{tag}
    viewer           GET /incidents/{incident_id}/writeup
    responder        PUT /incidents/{incident_id}/writeup
    viewer           GET /incidents/{incident_id}/writeup/revisions
    metrics          GET /metrics
    viewer           GET /models
    admin            POST /models
    viewer           GET /models/{name}
    admin            PATCH /models/{name}
    admin            POST /models/{name}/archive
    viewer           GET /models/{name}/checks
    viewer           GET /models/{name}/decisions
    admin            DELETE /models/{name}/escalation
    viewer           GET /models/{name}/escalation
    admin            PUT /models/{name}/escalation
    admin+pipeline   POST /models/{name}/events
    admin+pipeline   POST /models/{name}/events/upload
    admin+pipeline   POST /models/{name}/profiles
    viewer           GET /models/{name}/profiles
    viewer           GET /models/{name}/holds
    responder        POST /models/{name}/holds/{action}/rearm
    admin+pipeline   POST /models/{name}/labels
    admin+pipeline   POST /models/{name}/metrics
    admin            PUT /models/{name}/monitors/{monitor}
    viewer           GET /models/{name}/monitors/{monitor}/thresholds
    admin            POST /models/{name}/monitors/{monitor}/thresholds/refit
    admin            DELETE /models/{name}/policy
    viewer           GET /models/{name}/policy
    admin            PUT /models/{name}/policy
    viewer           POST /models/{name}/policy/backtest
    admin+pipeline   POST /models/{name}/predict
    responder        POST /models/{name}/restore
    admin+pipeline   POST /models/{name}/stages/{stage}/features
    admin            POST /models/{name}/unarchive
    admin            POST /models/{name}/versions
    viewer           GET /oncall
    viewer           GET /oncall/escalation
    viewer           GET /oncall/people
    admin            POST /oncall/people
    viewer           GET /oncall/schedules/{schedule_id}
    responder        POST /oncall/schedules/{schedule_id}/overrides
    viewer           GET /oncall/silences
    responder        POST /oncall/silences
    responder        POST /oncall/silences/{silence_id}/expire
    viewer           GET /openapi.json
    viewer           GET /outbox
    responder        POST /outbox/{message_id}/retry
    viewer           GET /pipelines
    viewer+pipeline  GET /pipelines/{name}
    responder        POST /pipelines/{name}/resume
    admin            GET /pipelines/{name}/tokens
    admin            POST /pipelines/{name}/tokens
    viewer           GET /policy
    admin            PUT /policy
    viewer           GET /postmortems
    viewer           GET /postmortems/analytics
    viewer           GET /postmortems/incidents/{incident_id}
    responder        POST /postmortems/incidents/{incident_id}/action-items
    responder        POST /postmortems/incidents/{incident_id}/action-items/{item_id}
    admin            POST /postmortems/incidents/{incident_id}/guards
    responder        POST /postmortems/incidents/{incident_id}/notes
    responder        POST /postmortems/incidents/{incident_id}/outbox/{message_id}/retry
    responder        POST /postmortems/incidents/{incident_id}/similar/{other_id}/dismiss
    responder        POST /postmortems/incidents/{incident_id}/status
    responder        POST /postmortems/incidents/{incident_id}/tags
    responder        POST /postmortems/incidents/{incident_id}/writeup
    public           GET /postmortems/login
    viewer           GET /postmortems/new
    responder        POST /postmortems/new
    public           GET /readyz
    viewer           GET /schedules
    admin            POST /schedules
    admin            DELETE /schedules/{schedule_id}
    viewer           GET /schedules/{schedule_id}
    admin            PATCH /schedules/{schedule_id}
    viewer           GET /schedules/{schedule_id}/oncall
    viewer           GET /schedules/{schedule_id}/overrides
    responder        POST /schedules/{schedule_id}/overrides
    responder        DELETE /schedules/{schedule_id}/overrides/{override_id}
    viewer           GET /schedules/{schedule_id}/overrides/{override_id}
    responder        PATCH /schedules/{schedule_id}/overrides/{override_id}
    admin            POST /schedules/{schedule_id}/rotations
    admin            DELETE /schedules/{schedule_id}/rotations/{rotation_id}
    viewer           GET /schedules/{schedule_id}/rotations/{rotation_id}
    admin            PATCH /schedules/{schedule_id}/rotations/{rotation_id}
    viewer           GET /schedules/{schedule_id}/shifts
    viewer           GET /schedules/{schedule_id}/shifts.ics
    viewer           GET /silences
    responder        POST /silences
    responder        DELETE /silences/{silence_id}
    public           POST /slack/interactions
    viewer           GET /taxonomies
    admin            POST /taxonomies
    viewer           GET /tokens
    viewer           POST /tokens
    viewer           DELETE /tokens/{token_id}
    viewer           GET /users
    admin            POST /users
    viewer           GET /users/{handle}
    admin            PATCH /users/{handle}
    viewer           GET /users/{handle}/shifts.ics
"""
DECISIONS = {f"{method} {path}": who for who, method, path in (line.split() for line in EXPECTED.strip().splitlines())}
CALLERS = ("anonymous", "pipeline", "viewer", "responder", "admin")  # admin last: its writes may remove rows


@pytest.fixture(scope="module")
def world(engine: Engine, models: factories.BuiltModels) -> Iterator[tuple[TestClient, World]]:
    """One app and one seeded database for the whole table (per database)."""
    empty_tables(engine)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), scheduler_enabled=False,
                        api_token=TOKEN, slack_token=None, public_url="http://watchtower.test",
                        allowed_hosts="testserver")  # TestClient's Host
    with TestClient(create_app(settings, engine=engine), follow_redirects=False) as client:
        yield client, seed(TestClient(client.app, headers={"Authorization": f"Bearer {TOKEN}"}), engine, models)
    empty_tables(engine)


def _calls() -> list[tuple[str, str]]:
    app = create_app(Settings(scheduler_enabled=False, database_url="sqlite://"))
    found = []
    for route in routes_of(app):
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                found.append((method, route.template))
    return found


CALLS = _calls()


def _expected(who: str, caller: str, method: str, template: str) -> int | None:
    """The refusal the access check must give (None: allowed)."""
    role, _, pipeline = who.partition("+")
    if role == "public":
        return None
    if caller == "anonymous":
        page = template == "/" or template.startswith(("/postmortems", "/oncall", "/docs", "/auth"))
        return 303 if page and method == "GET" and role == "viewer" else 401
    if caller == "pipeline":
        return None if pipeline and re.match(r"^/(models|pipelines)/\{name\}", template) else 403
    return None if Role(caller).allows(Role.viewer if role == "metrics" else Role(role)) else 403


def _path(template: str, params: dict[str, object]) -> str:
    values = dict(params)
    if template.startswith("/escalation-policies/"):
        values["name"] = params["policy"]
    if template.startswith("/static/"):  # a file every install has: the pages' style sheet, Swagger UI's
        values["path"] = "swagger-ui.css" if template.startswith("/static/swagger/") else "pages.css"
    return template.format(**values)


def test_every_route_has_a_decision_and_this_table_agrees() -> None:
    missing = [f"{method} {template}" for method, template in CALLS if rule_for(method, template) is None]
    assert missing == [], "give these routes a decision in watchtower/auth/routes.py"
    assert sorted(DECISIONS) == sorted(f"{method} {template}" for method, template in CALLS)


# Pages for the signed-in person's own page account: a bearer-token caller passes the access check, then the page
# sends them to sign in (a page password is changed in a page session).
NEEDS_PAGE_SESSION = {"GET /auth/password"}


def test_each_caller_gets_exactly_what_the_table_allows(world: tuple[TestClient, World]) -> None:
    client, seeded = world
    wrong = []
    for caller in CALLERS:
        for method, template in CALLS:
            path = _path(template, seeded.params)
            response = client.request(method, path, headers=seeded.callers[caller])
            expected = _expected(DECISIONS[f"{method} {template}"], caller, method, template)
            got = refused_by_access(response)
            if got == 303 and expected is None and f"{method} {template}" in NEEDS_PAGE_SESSION:
                got = None  # let through by the access check; the page itself asks a token caller to sign in
            if got != expected or response.status_code >= 500:
                wrong.append(f"{caller} {method} {path}: expected {expected or 'allowed'}, got "
                             f"{response.status_code} {response.text[:120]}")
    assert wrong == []
