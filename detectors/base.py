"""What every detector sees (a Window) and returns (Findings). Pure: no database, HTTP or clock."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # profile.py imports FeatureType from here
    from detectors.profile import ReferenceProfile

PREDICTION = "__prediction__"
LABEL = "__label__"
FeatureType = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Window:
    """Reference (training) rows and current (serving) rows of one model, same columns.

    Both frames hold the schema's feature columns plus PREDICTION and, where known, LABEL. `profile`, when the
    service stored one at registration, spares the native detectors from profiling the reference on every pass.
    """

    reference: pd.DataFrame
    current: pd.DataFrame
    schema: dict[str, FeatureType]
    task: Literal["classification", "regression"] = "classification"
    profile: "ReferenceProfile | None" = None

    def columns_of(self, kind: FeatureType) -> list[str]:
        """Feature names of one type, in schema order."""
        return [name for name, t in self.schema.items() if t == kind]


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


def per_test_alpha(alpha: float, tests: int, correction: str) -> float:
    """The p-value threshold of each of `tests` tests so the family stays at `alpha` (Bonferroni) or not."""
    return alpha / max(tests, 1) if correction == "bonferroni" else alpha


class InsufficientData(Exception):
    """The window cannot support a verdict (too few rows, no labels yet)."""


class Detector(BaseModel, ABC):
    """One check. Fields are validated params, stored with every finding."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: ClassVar[str]
    engine: ClassVar[str] = "native"

    @abstractmethod
    def run(self, window: Window) -> list[Finding]:
        """Compare the window's current rows against its reference rows."""
