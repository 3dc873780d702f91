"""Detectors by name: build one from JSON params (a bad param raises pydantic's ValidationError)."""

import importlib
from typing import Any, TypeVar

from detectors.base import Detector, DetectorKind

_DETECTORS: dict[str, type[Detector]] = {}
D = TypeVar("D", bound=type[Detector])


def register(cls: D) -> D:
    """Class decorator: make a detector reachable by its `name`; it must say what kind of detector it is."""
    if not isinstance(getattr(cls, "kind", None), DetectorKind):
        raise TypeError(f"detector {cls.__name__} declares no `kind: ClassVar[DetectorKind]`")
    _DETECTORS[cls.name] = cls
    return cls


def build(name: str, params: dict[str, Any]) -> Detector:
    """Validate params and return the detector; KeyError for an unknown name."""
    _load_builtins()
    return _DETECTORS[name].model_validate(params)


def engine_of(name: str) -> str:
    """The engine a detector runs on ('' for an unknown name)."""
    _load_builtins()
    return _DETECTORS[name].engine if name in _DETECTORS else ""


def needs_events(name: str) -> bool:
    """Whether the detector needs the monitor's min_events in the window (True for an unknown name)."""
    _load_builtins()
    return _DETECTORS[name].needs_events if name in _DETECTORS else True


def runs_on_profiles(name: str) -> bool:
    """Whether the detector tests merged profiles in profile mode (False: it reads rows; also an unknown name)."""
    _load_builtins()
    return _DETECTORS[name].profiles if name in _DETECTORS else False


def kind_of(name: str) -> DetectorKind | None:
    """The kind of a registered detector (None for an unknown name)."""
    _load_builtins()
    return _DETECTORS[name].kind if name in _DETECTORS else None


def names() -> list[str]:
    """Every registered detector name."""
    _load_builtins()
    return sorted(_DETECTORS)


# Modules whose import runs their @register; evidently and alibi-detect load only when their detector runs.
BUILTINS = (
    "alibi_drift",
    "cbpe",
    "evidently_compat",
    "evidently_drift",
    "kpi",
    "native_drift",
    "non_finite",
    "operational",
    "quality",
    "schema_check",
    "skew",
    "stat_drift",
    "volume",
)


def _load_builtins() -> None:
    for module in BUILTINS:
        importlib.import_module(f"detectors.{module}")
