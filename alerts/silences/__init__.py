"""Silences: Alertmanager-style matchers that hold pages (the breach is still recorded)."""

from typing import TYPE_CHECKING, Any

from alerts.silences.matchers import Matcher
from alerts.silences.models import Silence

if TYPE_CHECKING:
    from alerts.silences.service import owes_page, silence_incident, silenced

__all__ = ["Matcher", "Silence", "owes_page", "silence_incident", "silenced"]
SERVICE = frozenset({"owes_page", "silence_incident", "silenced"})


def __getattr__(name: str) -> Any:
    """The service's functions, imported when first asked for: importing the table (watchtower/tables.py, at
    every start) does not load the service and the incident lifecycle it depends on."""
    if name in SERVICE:
        from alerts.silences import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
