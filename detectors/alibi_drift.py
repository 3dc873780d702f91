"""Drift computed by alibi-detect (the optional `alibi` extra), turned into Findings.

alibi-detect is licensed BSL 1.1 since 0.12 (not open source, no production use without a commercial licence) and
0.13 caps numpy below 2, so it is never a core dependency: it is imported only inside `run`, and this module
imports without it. What its numbers are, next to the native engine's:
- TabularDrift runs scipy's KS, always asymptotic (native: exact for small samples), and scipy's chi2_contingency,
  which applies Yates' continuity correction to 2-level features (native: none). It keeps p-values and statistics
  in float32, so they equal scipy's to float32 rounding (~6e-8 relative), and tiny p-values underflow to 0.
- Its per-feature verdicts (`drift_type="feature"`) ignore the correction; the findings here face the batch
  threshold instead (p / n for Bonferroni, the FDR step-up cut-off), so feature and dataset verdicts agree.
- It takes one matrix: rows missing any feature (or with a non-finite number) are dropped on each side, and
  categories become integer codes, the reference's sorted categories first.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from detectors.base import DATASET, Detector, DetectorKind, FeatureType, Finding, InsufficientData, Window
from detectors.registry import register

log = logging.getLogger(__name__)

INSTALL = "pip install 'watchtower[alibi]'"
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Encoded:
    """The window's complete rows as two float matrices, one column per feature (or per category when one-hot)."""

    reference: Floats
    current: Floats
    categories: dict[int, list[int]]  # categorical column index -> the reference's codes (TabularDrift's format)
    extra: dict[str, float] = field(default_factory=dict)


def alibi_cd() -> Any:
    """`alibi_detect.cd`, or an ImportError naming the extra to install."""
    try:
        import alibi_detect.cd as cd
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "alibi_detect":  # installed, but something it needs is missing
            raise
        raise ImportError(f"the alibi-detect engine needs the optional extra: {INSTALL} (BSL 1.1 licence)") from exc
    return cd


def complete_rows(frame: pd.DataFrame, schema: dict[str, FeatureType]) -> pd.DataFrame:
    """The feature columns of the rows where every feature is present and every numeric one finite."""
    features = frame[list(schema)]
    keep = features.notna().all(axis=1).to_numpy()
    numeric = [name for name, kind in schema.items() if kind == "numeric"]
    if numeric:
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(features[numeric].to_numpy(dtype=np.float64, na_value=np.nan)).all(axis=1)
    return features[keep]


def category_codes(reference: pd.Series, current: pd.Series) -> tuple[Floats, Floats, int]:
    """Codes 0..k-1 for the reference's categories (as strings, sorted), k, k+1... for those only serving has."""
    ref, cur = reference.astype(str), current.astype(str)
    known = sorted(ref.unique())
    unseen = sorted(set(cur.unique()) - set(known))
    codes = {category: i for i, category in enumerate(known + unseen)}
    return ref.map(codes).to_numpy(np.float64), cur.map(codes).to_numpy(np.float64), len(known)


def encode(window: Window, min_rows: int, one_hot: bool = False) -> Encoded:
    """Complete rows of both sides; numeric features as they are (standardised by the reference when one-hot)."""
    reference, current = complete_rows(window.reference, window.schema), complete_rows(window.current, window.schema)
    extra = {"reference_n": float(len(reference)), "current_n": float(len(current)),
             "reference_dropped": float(len(window.reference) - len(reference)),
             "current_dropped": float(len(window.current) - len(current))}
    if len(current) < min_rows or len(reference) < min_rows:
        raise InsufficientData(f"{len(reference)} reference and {len(current)} current complete rows, "
                               f"need {min_rows}")
    ref_cols: list[Floats] = []
    cur_cols: list[Floats] = []
    categories: dict[int, list[int]] = {}
    for name, kind in window.schema.items():
        if kind == "numeric":
            ref, cur = reference[name].to_numpy(np.float64), current[name].to_numpy(np.float64)
            if one_hot:  # MMD's kernel has one bandwidth: put every feature on the reference's scale
                mean, std = ref.mean(), ref.std()
                ref, cur = (ref - mean) / (std or 1.0), (cur - mean) / (std or 1.0)
            ref_cols.append(ref[:, None])
            cur_cols.append(cur[:, None])
            continue
        ref, cur, known = category_codes(reference[name], current[name])
        if one_hot:
            eye = np.eye(int(max(ref.max(), cur.max())) + 1)
            ref_cols.append(eye[ref.astype(np.int64)])
            cur_cols.append(eye[cur.astype(np.int64)])
        else:
            categories[len(ref_cols)] = list(range(known))
            ref_cols.append(ref[:, None])
            cur_cols.append(cur[:, None])
    return Encoded(np.hstack(ref_cols), np.hstack(cur_cols), categories, extra)


@register
class AlibiDrift(Detector):
    """alibi-detect's TabularDrift: KS per numeric and chi-square per categorical feature, Bonferroni or FDR."""

    name: ClassVar[str] = "alibi_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.INPUT_DRIFT
    engine: ClassVar[str] = "alibi-detect"
    p_value: float = Field(default=0.05, gt=0, lt=1,
                           description="alibi's p_val: FWER for bonferroni, the q-value for fdr")
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    min_rows: int = Field(default=30, gt=1, description="Fewer complete rows on either side: insufficient data")

    def run(self, window: Window) -> list[Finding]:
        """Fit TabularDrift on the reference and test the current rows."""
        cd = alibi_cd()
        encoded = encode(window, self.min_rows)
        detector = cd.TabularDrift(encoded.reference, p_val=self.p_value, categories_per_feature=encoded.categories,
                                   correction=self.correction)
        data = detector.predict(encoded.current, drift_type="batch")["data"]
        p_values = np.asarray(data["p_val"], dtype=np.float64)
        statistics = np.asarray(data["distance"], dtype=np.float64)
        # Without a rejection alibi's FDR returns every step's cut-off; the first one (q / n) is the binding one.
        threshold = float(np.min(data["threshold"]))
        findings = []
        for i, feature in enumerate(window.schema):
            p = float(p_values[i])
            findings.append(Finding(self.name, self.engine, "chi2" if i in encoded.categories else "ks", feature,
                                    score=p, threshold=threshold, breached=p < threshold,
                                    statistic=float(statistics[i]), p_value=p, extra=dict(encoded.extra)))
        drifted = sum(f.breached for f in findings)
        smallest = float(p_values.min())
        findings.append(Finding(self.name, self.engine, "tabular_drift", DATASET, score=smallest, threshold=threshold,
                                breached=bool(data["is_drift"]), p_value=smallest,
                                extra=encoded.extra | {"features": float(len(findings)),
                                                       "drifted_features": float(drifted)}))
        return findings


@register
class AlibiMMDDrift(Detector):
    """alibi-detect's MMD permutation test on all features at once (PyTorch backend, Gaussian RBF kernel)."""

    name: ClassVar[str] = "alibi_mmd_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.INPUT_DRIFT
    engine: ClassVar[str] = "alibi-detect"
    p_value: float = Field(default=0.05, gt=0, lt=1, description="Significance of the permutation test")
    n_permutations: int = Field(default=100, ge=10, le=10_000)
    max_rows: int = Field(default=1000, ge=10, le=5000,
                          description="Rows sampled from each side: the kernel matrix is (2 * max_rows) squared")
    seed: int = Field(default=0, ge=0, description="Seeds the row sample and the permutations")
    min_rows: int = Field(default=30, gt=1, description="Fewer complete rows on either side: insufficient data")

    def run(self, window: Window) -> list[Finding]:
        """Sample both sides, standardise and one-hot encode them, and run the permutation test."""
        cd = alibi_cd()
        torch = _torch()
        encoded = encode(window, self.min_rows, one_hot=True)
        rng = np.random.default_rng(self.seed)
        reference, current = (_sample(rng, x, self.max_rows) for x in (encoded.reference, encoded.current))
        with torch.random.fork_rng():  # seed the permutations without touching the caller's generator
            torch.manual_seed(self.seed)
            detector = cd.MMDDrift(reference, backend="pytorch", p_val=self.p_value,
                                   n_permutations=self.n_permutations, device="cpu")
            data = detector.predict(current)["data"]
        p, distance = float(data["p_val"]), float(data["distance"])
        extra = encoded.extra | {"sampled_reference": float(len(reference)), "sampled_current": float(len(current)),
                                 "distance_threshold": float(data["distance_threshold"]),
                                 "n_permutations": float(self.n_permutations)}
        return [Finding(self.name, self.engine, "mmd", DATASET, score=p, threshold=self.p_value,
                        breached=bool(data["is_drift"]), statistic=distance, p_value=p, extra=extra)]


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "torch":
            raise
        raise ImportError("alibi_mmd_drift runs alibi-detect's MMD test on PyTorch, which is not installed: "
                          f"{INSTALL} torch (the CPU build is enough)") from exc
    return torch


def _sample(rng: np.random.Generator, x: Floats, rows: int) -> NDArray[np.float32]:
    """At most `rows` rows, drawn without replacement, as float32 (the kernel's dtype)."""
    if len(x) > rows:
        x = x[np.sort(rng.choice(len(x), rows, replace=False))]
    return x.astype(np.float32)
