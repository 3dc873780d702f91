"""FastAPI imported with the pydantic models it defines built at their first use, not while it is imported.

Importing fastapi defines 41 pydantic models (36 in fastapi.openapi.models), whose validators and serializers
pydantic builds as each class is defined: 35-60 ms of CPU of `watchtower serve`'s start, for models that only
the OpenAPI document (built at its first request) and routers loaded later use. A model defined with pydantic's
`defer_build` is built at its first validation, serialization or schema instead, the same model. Pydantic has
no public switch for another package's models: the default of its config is changed while fastapi is imported
and restored after (with a pydantic that lacks that default, an ordinary import).
"""

import sys


def import_fastapi() -> None:
    """Import fastapi, its models' builds deferred; nothing when it is already imported."""
    if "fastapi" in sys.modules:
        return
    try:
        from pydantic._internal._config import config_defaults
    except ImportError:
        import fastapi  # noqa: F401
        return
    before = config_defaults.get("defer_build", False)
    config_defaults["defer_build"] = True
    try:
        import fastapi  # noqa: F401
    finally:
        config_defaults["defer_build"] = before
