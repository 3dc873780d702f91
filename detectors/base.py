"""What every detector sees (a Window) and returns (Findings). Pure: no database, HTTP or clock."""

import json
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # profile.py imports FeatureType from here; pandas stays out of the app's start-up
    import pandas as pd

    from detectors.profile import ReferenceProfile
    from detectors.sketches.profile import Profile

# Columns of the current frame besides the features (the reference frame has PREDICTION, LABEL and PROBA_*).
PREDICTION = "__prediction__"
LABEL = "__label__"
ID = "__id__"  # the prediction id, also the entity id that skew checks join on
TS = "__ts__"  # when the prediction was served (aware UTC)
LATENCY = "__latency_ms__"
ERROR = "__error__"  # the serving error message, None when the prediction succeeded
DATASET = "__dataset__"  # the feature name of a dataset-level finding (share drifted, volume, schema)
PROBA_PREFIX = "__proba__:"  # one column per class: the model's probability of that class
FeatureType = Literal["numeric", "categorical"]


def _pandas_missing(value: Any) -> bool:
    """pd.NA or pd.NaT, told by type name: pandas stays out of the app's start-up."""
    return type(value).__name__ in ("NAType", "NaTType")


@dataclass(frozen=True)
class _ScalarTypes:
    """The types class_name tells apart; numpy's join them once numpy is imported (before, no value can be one)."""

    floats: tuple[type[float], ...] = (float,)  # np.floating too: typed so, as it converts alike
    bools: tuple[type, ...] = (bool,)
    plain: tuple[type, ...] = (int, float, str)


_scalar_types = _ScalarTypes()


def _scalars() -> _ScalarTypes:
    """The scalar types, numpy's included once it is imported: numpy stays out of the app's start-up."""
    global _scalar_types
    np = sys.modules.get("numpy")
    if np is not None and len(_scalar_types.bools) == 1:
        _scalar_types = _ScalarTypes((float, np.floating), (bool, np.bool_), (int, float, str, np.integer, np.floating))
    return _scalar_types


def class_name(value: Any) -> str | None:
    """One spelling per class whatever JSON or a dtype made of it: 1, 1.0, np.int64(1) and "1" are all "1";
    True is "true" (the event store's spelling of JSON true); None, NaN and pandas' NA/NaT are None."""
    types = _scalars()
    if value is None or (isinstance(value, types.floats) and math.isnan(value)) or _pandas_missing(value):
        return None
    if isinstance(value, types.bools):
        return str(bool(value)).lower()
    if isinstance(value, types.floats) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, types.plain):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Window:
    """Reference (training) rows and current (serving) rows of one model, same columns.

    Both frames hold the schema's feature columns plus PREDICTION and, where known, LABEL. `profile`, when the
    service stored one at registration, spares the native detectors from profiling the reference on every pass.
    """

    reference: "pd.DataFrame"
    current: "pd.DataFrame"
    schema: dict[str, FeatureType]
    task: Literal["classification", "regression"] = "classification"
    profile: "ReferenceProfile | None" = None
    # The window's bounds; a count-based window has the served times of its first and last events.
    start: datetime | None = None
    end: datetime | None = None
    # Feature values logged at other pipeline stages for the window's ids (stage name -> ID column + features),
    # e.g. "training" (as generated for training) or "ingestion"; skew checks join them on ID.
    stages: "Mapping[str, pd.DataFrame]" = field(default_factory=dict)
    # Business KPI points pushed through the API during the window: columns name, value, ts.
    metrics: "pd.DataFrame | None" = None
    # Events in each of the previous windows of the same length, oldest first (volume checks learn from them).
    history_counts: tuple[int, ...] = ()
    # Events refused at ingest during the window, by reason: columns kind (missing | extra | wrong_type),
    # feature, count. Producers that log fire-and-forget never see their 422s; this is how we do.
    rejected: "pd.DataFrame | None" = None
    # Profile mode: the reference's and the window's merged profiles (mergeable sketches), set by the monitor
    # above a window size; detectors that support it test these instead of the rows.
    sketched: "tuple[Profile, Profile] | None" = None

    @property
    def events(self) -> int:
        """Events in the window: the current profile's rows in profile mode (the frame may hold none)."""
        return self.sketched[1].rows if self.sketched is not None else len(self.current)

    @property
    def reference_rows(self) -> int:
        return self.sketched[0].rows if self.sketched is not None else len(self.reference)

    def columns_of(self, kind: FeatureType) -> list[str]:
        """Feature names of one type, in schema order."""
        return [name for name, t in self.schema.items() if t == kind]

    @property
    def proba_columns(self) -> list[str]:
        """The current frame's class-probability columns (empty when the model reports none)."""
        return [c for c in self.current.columns if str(c).startswith(PROBA_PREFIX)]


@dataclass(frozen=True)
class Finding:
    """One statistic about one feature (or the prediction, or a KPI) and its verdict."""

    detector: str
    engine: str
    test: str
    feature: str
    score: float
    threshold: float
    breached: bool
    direction: Literal["below", "above"] = "below"  # which side of the threshold is bad
    statistic: float | None = None
    p_value: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    # Where the threshold came from: "static" (the detector's own) or how a learned one was fitted, set by
    # detectors.thresholds.apply (extra holds only floats, so the text needs its own field).
    threshold_source: str = "static"
    # How it was computed: "exact" on the rows, or "sketch k=<k>" on merged profiles (extra["error_bound"] then
    # bounds the statistic's error); `note` says what a reader must know (near threshold, a test replaced).
    mode: str = "exact"
    note: str = ""


def per_test_alpha(alpha: float, tests: int, correction: str) -> float:
    """The p-value threshold of each of `tests` tests so the family stays at `alpha` (Bonferroni) or not."""
    return alpha / max(tests, 1) if correction == "bonferroni" else alpha


class InsufficientData(Exception):
    """The window cannot support a verdict (too few rows, no labels yet)."""


class DetectorKind(StrEnum):
    """What a detector watches; response policies match on it (a new detector must declare one)."""

    INPUT_DRIFT = "input_drift"
    PREDICTION_DRIFT = "prediction_drift"
    DATA_QUALITY = "data_quality"  # missing values, schema mismatch, out of range, unseen categories
    SKEW = "skew"  # the same entities' features differ between a pipeline stage and serving
    KPI = "kpi"  # measured from labels
    ESTIMATED_KPI = "estimated_kpi"  # estimated without labels (CBPE)
    OPERATIONAL = "operational"  # latency, serving errors
    BUSINESS_KPI = "business_kpi"  # pushed business metrics
    VOLUME = "volume"  # how many events arrive


class Detector(BaseModel, ABC):
    """One check. Fields are validated params, stored with every finding."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: ClassVar[str]
    kind: ClassVar[DetectorKind]
    engine: ClassVar[str] = "native"
    # False for checks that must run on an empty or tiny window (a dead feed, refused events, pushed KPIs):
    # the monitor's min_events gate does not apply to them.
    needs_events: ClassVar[bool] = True
    # True for checks that run on `window.sketched` in profile mode: the monitor then reads none of their columns.
    profiles: ClassVar[bool] = False

    @abstractmethod
    def run(self, window: Window) -> list[Finding]:
        """Compare the window's current rows against its reference rows."""
