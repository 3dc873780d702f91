"""Silences: Alertmanager-style matchers that hold pages (the breach is still recorded)."""

from alerts.silences.matchers import Matcher
from alerts.silences.models import Silence
from alerts.silences.service import owes_page, silence_incident, silenced

__all__ = ["Matcher", "Silence", "owes_page", "silence_incident", "silenced"]
