"""What a breach's diagnosis needs from its window, measured once at breach time and kept in the incident's
evidence (`evidence["diagnosis"]`), so re-evaluation and the bench never need the window again.

Pure: a detectors Window in, a JSON-able dict out.
"""

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from statistics import median
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from detectors import categorical_stats as cat
from detectors import kpi_metrics as m
from detectors.base import LABEL, PREDICTION, InsufficientData, Window
from detectors.cbpe import EstimatedAccuracy
from detectors.kpi import usable
from detectors.profile import CategoricalProfile, category_counts
from postmortems.diagnosis import feature_numbers
from postmortems.diagnosis.unit_maps import thinned

log = logging.getLogger(__name__)
MIN_ROWS = 20  # fewer serving rows (every request refused, a dead feed) say nothing about each feature
SAMPLE_ROWS = 25_000  # rows per side the numbers are read from (a seeded sample beyond)
WORKERS = 2


def measure(window: Window) -> dict[str, Any]:
    """Per-feature numbers, the prediction's shift, measured and estimated KPI, volume and refusals.

    Shares, p-values and unit fits are read from at most SAMPLE_ROWS rows of each side (a seeded uniform
    sample): a diagnosis names the failure, it does not need a million rows to, and at that size the exact
    numbers cost more than the detectors themselves. Counts (rows, volume, refusals) are the window's own.
    """
    rows = window.events  # profile mode: the profile's rows (the frame may hold none)
    window = replace(window, current=sampled(window.current), reference=sampled(window.reference))
    profile = window.profile

    def numbers_of(name: str, kind: str) -> dict[str, Any]:
        if kind == "numeric":
            return feature_numbers.numeric(window.reference[name], window.current[name],
                                           profile.numeric.get(name) if profile else None)
        return feature_numbers.categorical(window.reference[name], window.current[name],
                                           profile.categorical.get(name) if profile else None)

    measured = [(name, kind) for name, kind in window.schema.items()
                if len(window.current) >= MIN_ROWS and name in window.current.columns and name in window.reference]
    # Features on two threads, as native_drift's checks: their sorts and tests run in numpy and scipy, mostly
    # without the GIL, and a breach's pass waits for these numbers before it answers.
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        features = dict(zip([name for name, _ in measured],
                            pool.map(lambda item: numbers_of(*item), measured), strict=True))
    numbers: dict[str, Any] = finite({"rows": rows, "features": features,
                                      "prediction": prediction_shift(window), "kpi": kpi(window),
                                      "volume": volume(window, rows), "refused": refused(window)})
    return numbers


def sampled(frame: pd.DataFrame) -> pd.DataFrame:
    """At most SAMPLE_ROWS rows, drawn uniformly with a fixed seed and kept in their order."""
    if len(frame) <= SAMPLE_ROWS:
        return frame
    keep = np.sort(np.random.default_rng(0).choice(len(frame), SAMPLE_ROWS, replace=False))
    return frame.iloc[keep]


def finite(value: Any) -> Any:
    """The numbers with NaN and infinities as None: PostgreSQL's JSON has no NaN."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def prediction_shift(window: Window) -> dict[str, Any]:
    """How far the predictions moved from the reference's: KS (regression) or chi-square over classes."""
    ref, cur = window.reference.get(PREDICTION), window.current.get(PREDICTION)
    if ref is None or cur is None or ref.dropna().empty or cur.dropna().empty:
        return {}
    if window.task == "regression":
        a = thinned(pd.to_numeric(ref, errors="coerce").dropna().to_numpy(np.float64))
        b = thinned(pd.to_numeric(cur, errors="coerce").dropna().to_numpy(np.float64))
        return {"p": float(ks_2samp(a, b).pvalue), "reference_mean": float(a.mean()), "mean": float(b.mean())}
    ref_classes, ref_counts = category_counts(pd.Series(m.class_names(ref.dropna())))
    cur_classes, cur_counts = category_counts(pd.Series(m.class_names(cur.dropna())))
    union, a_counts, b_counts = cat.align(CategoricalProfile(ref_classes, ref_counts, 0), cur_classes, cur_counts)
    a_share, b_share = a_counts / a_counts.sum(), b_counts / b_counts.sum()
    moved = int(np.argmax(np.abs(a_share - b_share)))
    return {"p": cat.chi2_homogeneity(a_counts, b_counts)[1], "class": union[moved],
            "reference_share": float(a_share[moved]), "share": float(b_share[moved])}


def kpi(window: Window) -> dict[str, Any]:
    """Accuracy (or mean absolute error) measured from labels, on the reference, and estimated without labels."""
    out: dict[str, Any] = {}
    reference, labelled = usable(window.reference), usable(window.current)
    if window.task == "regression":
        def mae(frame: pd.DataFrame) -> float:
            return float(np.mean(np.abs(pd.to_numeric(frame[LABEL]) - pd.to_numeric(frame[PREDICTION]))))
        if not reference.empty:
            out |= {"metric": "mae", "reference": mae(reference)}
        if not labelled.empty:
            out |= {"metric": "mae", "measured": mae(labelled), "labelled": len(labelled)}
        return out
    if not reference.empty:
        out |= {"metric": "accuracy", "reference": m.accuracy(m.class_names(reference[LABEL]),
                                                               m.class_names(reference[PREDICTION]))}
    if not labelled.empty:
        out |= {"metric": "accuracy", "labelled": len(labelled),
                "measured": m.accuracy(m.class_names(labelled[LABEL]), m.class_names(labelled[PREDICTION]))}
    try:
        estimate = EstimatedAccuracy(max_drop=1.0, min_rows=30, min_reference_labels=30).run(window)[0]
    except InsufficientData as exc:
        log.debug("no accuracy estimate: %s", exc)
    else:
        out |= {"estimated": estimate.score, "sampling_error": estimate.extra["sampling_error"]}
    return out


def volume(window: Window, rows: int) -> dict[str, Any]:
    """Events in the window and the median of the previous windows (when the monitor counts them)."""
    history = [c for c in window.history_counts if c > 0]
    return {"rows": rows, **({"expected": float(median(history))} if history else {})}


def refused(window: Window) -> dict[str, Any]:
    """Events refused at ingest in the window, by `kind:feature` (a feature gone missing upstream shows here)."""
    rejected = window.rejected
    if rejected is None or rejected.empty:
        return {}
    sums = rejected.groupby(["kind", "feature"])["count"].sum()
    return {f"{kind}:{feature}": int(n) for (kind, feature), n in sums.items()}
