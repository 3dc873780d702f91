"""Where each router lives and which paths it answers, in the order the app includes them.

The app places every router by this list before importing its module (watchtower/lazy_routes.py): a request
loads only the modules whose paths can match it. tests/watchtower/test_lazy_routes.py checks that every
module's path templates here are exactly the ones its routers declare, so a new route fails that test until it
is listed.
"""

# (module, router attribute), in the app's include order: that order is the route matching order.
ROUTERS: tuple[tuple[str, str], ...] = (
    ("watchtower.registry.api", "router"),
    ("watchtower.serving.api", "router"),
    ("watchtower.events.api", "router"),
    ("watchtower.checks.api", "router"),
    ("postmortems.api", "router"),
    ("postmortems.pages", "router"),
    ("postmortems.api", "writes"),
    ("watchtower.checks.api", "writes"),
    ("alerts.outbox.api", "router"),
    ("watchtower.policy.api", "router"),
    ("watchtower.auth.users", "router"),
    ("watchtower.auth.tokens_api", "router"),
    ("watchtower.auth.audit_api", "router"),
    ("watchtower.auth.pages", "router"),  # issue 13: page sign-in per person, passwords
    ("watchtower.auth.password_api", "router"),
    ("watchtower.policy.holds_api", "router"),
    ("watchtower.events.profiles_api", "router"),  # issue 15: profiles posted from a data lake
    ("alerts.silences.api", "router"),  # issue 11: silences, Alertmanager in
    ("alerts.silences.pages", "router"),
    ("alerts.alertmanager", "router"),
    ("alerts.oncall.api", "router"),
    ("alerts.oncall.pages", "router"),
    ("alerts.oncall.people", "router"),
    ("alerts.oncall.escalation_api", "router"),  # issue 11: escalation
    ("alerts.oncall.escalation_api", "writes"),
    ("alerts.oncall.escalation_pages", "router"),
    ("alerts.slack.interactions", "router"),  # signed by Slack, not behind the bearer token
)

# Every path template each module's routers answer (any method).
PATHS: dict[str, tuple[str, ...]] = {
    "watchtower.registry.api": (
        "/models", "/models/{name}", "/models/{name}/versions", "/models/{name}/restore", "/models/{name}/archive",
        "/models/{name}/unarchive", "/models/{name}/monitors/{monitor}", "/pipelines", "/pipelines/{name}",
        "/pipelines/{name}/resume"),
    "watchtower.serving.api": ("/models/{name}/predict",),
    "watchtower.events.api": (
        "/models/{name}/events", "/models/{name}/events/upload", "/models/{name}/labels",
        "/models/{name}/stages/{stage}/features", "/models/{name}/metrics"),
    "watchtower.checks.api": (
        "/models/{name}/checks", "/models/{name}/monitors/{monitor}/thresholds",
        "/models/{name}/monitors/{monitor}/thresholds/refit"),
    "postmortems.api": (
        "/incidents", "/incidents/import", "/incidents/{incident_id}", "/incidents/{incident_id}/writeup",
        "/incidents/{incident_id}/writeup/revisions", "/incidents/{incident_id}/guard-proposals",
        "/incidents/{incident_id}/export", "/incidents/{incident_id}/status", "/incidents/{incident_id}/resolve",
        "/incidents/{incident_id}/notes", "/incidents/{incident_id}/tags/{tag}",
        "/incidents/{incident_id}/action-items", "/incidents/{incident_id}/action-items/{item_id}",
        "/incidents/{incident_id}/similar/{other_id}/dismiss", "/analytics", "/taxonomies"),
    "postmortems.pages": (
        "/postmortems", "/postmortems/new", "/postmortems/analytics", "/postmortems/login",
        "/postmortems/incidents/{incident_id}", "/postmortems/incidents/{incident_id}/notes",
        "/postmortems/incidents/{incident_id}/status", "/postmortems/incidents/{incident_id}/tags",
        "/postmortems/incidents/{incident_id}/writeup", "/postmortems/incidents/{incident_id}/action-items",
        "/postmortems/incidents/{incident_id}/action-items/{item_id}", "/postmortems/incidents/{incident_id}/guards",
        "/postmortems/incidents/{incident_id}/similar/{other_id}/dismiss",
        "/postmortems/incidents/{incident_id}/outbox/{message_id}/retry"),
    "alerts.outbox.api": ("/outbox", "/outbox/{message_id}/retry"),
    "watchtower.policy.api": (
        "/policy", "/models/{name}/policy", "/models/{name}/decisions", "/models/{name}/policy/backtest"),
    "watchtower.auth.users": ("/users", "/users/{handle}"),
    "watchtower.auth.tokens_api": ("/tokens", "/tokens/{token_id}", "/pipelines/{name}/tokens"),
    "watchtower.auth.audit_api": ("/audit",),
    "watchtower.auth.pages": ("/auth/login", "/auth/logout", "/auth/password"),
    "watchtower.auth.password_api": ("/auth/users/{handle}/password", "/auth/change-password"),
    "watchtower.policy.holds_api": ("/models/{name}/holds", "/models/{name}/holds/{action}/rearm"),
    "watchtower.events.profiles_api": ("/models/{name}/profiles",),
    "alerts.silences.api": ("/silences", "/silences/{silence_id}"),
    "alerts.silences.pages": ("/oncall/silences", "/oncall/silences/{silence_id}/expire"),
    "alerts.alertmanager": ("/alertmanager",),
    "alerts.oncall.api": (
        "/schedules", "/schedules/{schedule_id}", "/schedules/{schedule_id}/rotations",
        "/schedules/{schedule_id}/rotations/{rotation_id}", "/schedules/{schedule_id}/overrides",
        "/schedules/{schedule_id}/overrides/{override_id}", "/schedules/{schedule_id}/oncall",
        "/schedules/{schedule_id}/shifts", "/schedules/{schedule_id}/shifts.ics", "/users/{handle}/shifts.ics"),
    "alerts.oncall.pages": ("/oncall", "/oncall/schedules/{schedule_id}", "/oncall/schedules/{schedule_id}/overrides"),
    "alerts.oncall.people": ("/oncall/people",),
    "alerts.oncall.escalation_api": (
        "/escalation-policies", "/escalation-policies/{name}", "/models/{name}/escalation",
        "/incidents/{incident_id}/escalation"),
    "alerts.oncall.escalation_pages": ("/oncall/escalation",),
    "alerts.slack.interactions": ("/slack/interactions",),
}
