"""People and access: users and roles, personal and pipeline tokens, the access check on every route
(routes.py decides, access.py enforces), redaction of secrets and the audit log."""

from watchtower.auth.bearer import WriteAccess, require_token

__all__ = ["WriteAccess", "require_token"]
