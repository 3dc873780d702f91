"""People and access: the one user table (on-call, Slack, and roles later) and the bearer-token check."""

from watchtower.auth.bearer import WriteAccess, require_token

__all__ = ["WriteAccess", "require_token"]
