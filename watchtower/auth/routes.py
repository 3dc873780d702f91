"""The access decision for every route: who may call it. A route missing here is refused (admin only) and
fails tests/watchtower/test_route_access.py, so every new route gets a decision."""

from dataclasses import dataclass

from watchtower.auth.roles import Role


@dataclass(frozen=True)
class Rule:
    """`role` needed (None: open to anyone); `pipeline`: a pipeline's service token may call it for its own
    pipeline (or a model of it); `metrics`: the /metrics switches (public, scrape token) apply."""

    role: Role | None
    pipeline: bool = False
    metrics: bool = False


PUBLIC = Rule(None)
VIEW = Rule(Role.viewer)
RESPOND = Rule(Role.responder)
ADMIN = Rule(Role.admin)
POLL = Rule(Role.viewer, pipeline=True)  # people read it, its own pipeline polls it
INGEST = Rule(Role.admin, pipeline=True)  # data in: the model's pipeline, or an admin
METRICS = Rule(Role.viewer, metrics=True)


def _rules(rule: Rule, *routes: str) -> dict[str, Rule]:
    return dict.fromkeys(routes, rule)


RULES: dict[str, Rule] = {
    # Probes, the sign-in itself and Slack (which signs its requests) need no role.
    # Changing one's own password proves who one is with the current one (and is throttled as sign-in is).
    # The pages' static CSS and JS, Swagger UI's included, hold nothing private.
    **_rules(PUBLIC, "GET /healthz", "GET /readyz", "GET /postmortems/login", "GET /auth/login", "POST /auth/login",
             "POST /auth/logout", "POST /auth/change-password", "POST /slack/interactions", "GET /static/{path}",
             "GET /static/swagger/{path}"),
    "GET /metrics": METRICS,
    "GET /pipelines/{name}": POLL,
    **_rules(INGEST, "POST /models/{name}/predict", "POST /models/{name}/events", "POST /models/{name}/events/upload",
             "POST /models/{name}/labels", "POST /models/{name}/stages/{stage}/features",
             "POST /models/{name}/metrics", "POST /models/{name}/profiles"),
    # Reading: everything, for any viewer (the backtest only computes, it stores nothing).
    **_rules(VIEW, "GET /", "GET /openapi.json", "GET /docs",
             "GET /models", "GET /models/{name}", "GET /models/{name}/profiles", "GET /pipelines",
             "GET /models/{name}/checks",
             "GET /models/{name}/monitors/{monitor}/thresholds", "GET /models/{name}/policy",
             "GET /models/{name}/decisions", "POST /models/{name}/policy/backtest", "GET /models/{name}/holds",
             "GET /policy", "GET /incidents", "GET /incidents/{incident_id}", "GET /incidents/{incident_id}/writeup",
             "GET /incidents/{incident_id}/writeup/revisions", "GET /incidents/{incident_id}/export",
             "GET /incidents/{incident_id}/escalation",
             "GET /incidents/{incident_id}/guard-proposals", "GET /analytics", "GET /taxonomies", "GET /outbox",
             "GET /users", "GET /users/{handle}", "GET /users/{handle}/shifts.ics", "GET /silences",
             "GET /schedules", "GET /schedules/{schedule_id}", "GET /schedules/{schedule_id}/rotations/{rotation_id}",
             "GET /schedules/{schedule_id}/overrides", "GET /schedules/{schedule_id}/overrides/{override_id}",
             "GET /schedules/{schedule_id}/oncall", "GET /schedules/{schedule_id}/shifts",
             "GET /schedules/{schedule_id}/shifts.ics", "GET /escalation-policies", "GET /escalation-policies/{name}",
             "GET /models/{name}/escalation",
             "GET /postmortems", "GET /postmortems/incidents/{incident_id}", "GET /postmortems/new",
             "GET /postmortems/analytics", "GET /oncall", "GET /oncall/silences", "GET /oncall/schedules/{schedule_id}",
             "GET /oncall/people", "GET /oncall/escalation",
             # Everyone manages their own tokens (a viewer's tokens are viewer tokens) and page password.
             "GET /tokens", "POST /tokens", "DELETE /tokens/{token_id}", "GET /auth/password", "POST /auth/password"),
    # Answering incidents: file, note, tag, move, write up; restore, resume, re-arm; silence; on-call overrides.
    **_rules(RESPOND, "POST /incidents", "PATCH /incidents/{incident_id}", "POST /incidents/{incident_id}/status",
             "POST /incidents/{incident_id}/resolve", "POST /incidents/{incident_id}/notes",
             "PUT /incidents/{incident_id}/tags/{tag}", "PUT /incidents/{incident_id}/writeup",
             "POST /incidents/{incident_id}/action-items", "PATCH /incidents/{incident_id}/action-items/{item_id}",
             "POST /incidents/{incident_id}/similar/{other_id}/dismiss", "POST /outbox/{message_id}/retry",
             "POST /models/{name}/restore", "POST /pipelines/{name}/resume", "POST /models/{name}/holds/{action}/rearm",
             "POST /silences", "DELETE /silences/{silence_id}", "POST /alertmanager",
             "POST /schedules/{schedule_id}/overrides", "PATCH /schedules/{schedule_id}/overrides/{override_id}",
             "DELETE /schedules/{schedule_id}/overrides/{override_id}",
             "POST /postmortems/new", "POST /postmortems/incidents/{incident_id}/notes",
             "POST /postmortems/incidents/{incident_id}/status", "POST /postmortems/incidents/{incident_id}/tags",
             "POST /postmortems/incidents/{incident_id}/writeup",
             "POST /postmortems/incidents/{incident_id}/action-items",
             "POST /postmortems/incidents/{incident_id}/action-items/{item_id}",
             "POST /postmortems/incidents/{incident_id}/similar/{other_id}/dismiss",
             "POST /postmortems/incidents/{incident_id}/outbox/{message_id}/retry", "POST /oncall/silences",
             "POST /oncall/silences/{silence_id}/expire", "POST /oncall/schedules/{schedule_id}/overrides"),
    # Changing the setup: models, monitors, thresholds, policies, people, schedules, escalation, taxonomies,
    # imports, pipeline tokens, anyone's tokens, the audit log. A guard adds a detector to a monitor: admin (the
    # JSON action-item route checks this itself when its body carries a guard).
    **_rules(ADMIN, "POST /models", "PATCH /models/{name}", "POST /postmortems/incidents/{incident_id}/guards",
             "PUT /auth/users/{handle}/password",
             "POST /models/{name}/versions", "POST /models/{name}/archive",
             "POST /models/{name}/unarchive", "PUT /models/{name}/monitors/{monitor}",
             "POST /models/{name}/monitors/{monitor}/thresholds/refit", "PUT /policy", "PUT /models/{name}/policy",
             "DELETE /models/{name}/policy", "POST /users", "PATCH /users/{handle}", "POST /oncall/people",
             "POST /schedules", "PATCH /schedules/{schedule_id}", "DELETE /schedules/{schedule_id}",
             "POST /schedules/{schedule_id}/rotations", "PATCH /schedules/{schedule_id}/rotations/{rotation_id}",
             "DELETE /schedules/{schedule_id}/rotations/{rotation_id}", "POST /escalation-policies",
             "PATCH /escalation-policies/{name}", "DELETE /escalation-policies/{name}",
             "PUT /models/{name}/escalation", "DELETE /models/{name}/escalation", "POST /taxonomies",
             "POST /incidents/import", "GET /pipelines/{name}/tokens", "POST /pipelines/{name}/tokens",
             "GET /audit"),
}


def rule_for(method: str, template: str) -> Rule | None:
    """The decision for one route (HEAD is decided as GET), or None when it has none."""
    return RULES.get(f"{'GET' if method == 'HEAD' else method} {template}")
