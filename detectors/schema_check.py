"""Schema mismatches: events refused at ingest, and accepted rows whose features are absent, extra or mistyped.

Producers that log fire-and-forget never read their 422s, so a renamed or retyped field upstream shows up here
first: as ingest rejections (`window.rejected`), or in the accepted frame itself.
"""

from collections import Counter
from numbers import Real
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from detectors.base import DATASET, Detector, DetectorKind, FeatureType, Finding, Window
from detectors.registry import register
from detectors.sketches import drift as sketched
from detectors.sketches.profile import Profile

KINDS = ("missing", "extra", "wrong_type")


def wrong_type_count(column: pd.Series, kind: FeatureType) -> int:
    """Present values that are not a number (numeric feature) or not a scalar label (categorical feature)."""
    if kind == "numeric" and pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return 0
    if kind == "categorical" and column.dtype != object:
        return 0
    present = column[column.notna()]
    if kind == "numeric":
        ok = present.map(lambda v: isinstance(v, Real) and not isinstance(v, bool | np.bool_))
    else:
        ok = present.map(lambda v: isinstance(v, str | Real | np.bool_))
    return int((~ok.astype(bool)).sum())


def frame_mismatches(current: pd.DataFrame, schema: dict[str, FeatureType]) -> Counter[tuple[str, str]]:
    """(kind, feature) -> affected accepted rows: schema features absent, unknown features present, wrong types."""
    found: Counter[tuple[str, str]] = Counter()
    for feature, kind in schema.items():
        if feature not in current.columns:
            found["missing", feature] = len(current)
        else:
            found["wrong_type", feature] = wrong_type_count(current[feature], kind)
    for column in current.columns:
        name = str(column)
        if name not in schema and not name.startswith("__"):  # "__" columns are ours: id, prediction, label...
            found["extra", name] = int(current[column].notna().sum())
    return found


def profile_mismatches(current: Profile, schema: dict[str, FeatureType]) -> Counter[tuple[str, str]]:
    """(kind, feature) -> accepted rows, from a merged profile: schema features it has no column for. A profile
    holds only the schema's columns, typed, so extra and mistyped values (which ingest refuses) do not show here."""
    found: Counter[tuple[str, str]] = Counter()
    for feature in schema:
        if feature not in current.numeric and feature not in current.categorical:
            found["missing", feature] = current.rows
    return found


def rejected_counts(rejected: pd.DataFrame | None) -> Counter[tuple[str, str]]:
    """(kind, feature) -> events refused at ingest."""
    found: Counter[tuple[str, str]] = Counter()
    if rejected is None or rejected.empty:
        return found
    for (kind, feature), count in rejected.groupby(["kind", "feature"])["count"].sum().items():
        found[str(kind), str(feature)] = int(count)
    return found


@register
class SchemaMismatch(Detector):
    """Per (kind, feature), the share of the window's events affected: refused at ingest or accepted but wrong.

    The denominator is accepted rows + refusals, each refusal reason counted once (an event refused for two
    fields counts twice). A clean window gives one unbreached `schema_ok` finding so a healthy check shows.
    """

    name: ClassVar[str] = "schema_mismatch"
    kind: ClassVar[DetectorKind] = DetectorKind.DATA_QUALITY
    needs_events: ClassVar[bool] = False  # every event refused at ingest leaves an empty window
    profiles: ClassVar[bool] = True  # refusals as always; accepted rows' absent features from the profile
    max_share: float = Field(default=0.0, ge=0, le=1, description="Breach above this share of affected events")

    def run(self, window: Window) -> list[Finding]:
        refused = rejected_counts(window.rejected)
        accepted = (frame_mismatches(window.current, window.schema) if window.sketched is None
                    else profile_mismatches(window.sketched[1], window.schema))
        events = window.events + sum(refused.values())
        findings = []
        for kind, feature in sorted(set(refused) | set(accepted), key=_order):
            count = refused[kind, feature] + accepted[kind, feature]
            if count == 0:
                continue
            share = count / events
            findings.append(Finding(self.name, self.engine, kind, feature, score=share, threshold=self.max_share,
                                    breached=share > self.max_share, direction="above",
                                    extra={"rejected": float(refused[kind, feature]),
                                           "accepted": float(accepted[kind, feature]), "events": float(events)}))
        if not findings:
            findings.append(Finding(self.name, self.engine, "schema_ok", DATASET, score=0.0, threshold=self.max_share,
                                    breached=False, direction="above", extra={"events": float(events)}))
        return findings if window.sketched is None else sketched.counted(findings, window.sketched[1].k)


def _order(key: tuple[str, str]) -> tuple[int, str]:
    kind, feature = key
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), f"{kind}:{feature}")
