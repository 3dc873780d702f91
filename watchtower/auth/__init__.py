"""People and access: users and roles, personal and pipeline tokens, the access check on every route
(routes.py decides, access.py enforces), redaction of secrets and the audit log.

Nothing is imported here: the tables (auth.models) load without FastAPI, which `watchtower monitor` never needs;
routes take `WriteAccess` from auth.bearer."""
