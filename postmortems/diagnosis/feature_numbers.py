"""Per-feature numbers a diagnosis needs, from the reference and the window's serving rows (pure)."""

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from detectors import categorical_stats as cat
from detectors.profile import CategoricalProfile, NumericProfile, finite_values, profile_categorical, profile_numeric
from postmortems.diagnosis.unit_maps import best_fit, thinned

SHIFTED_P = 1e-3  # below this KS p-value a numeric feature counts as moved enough to look for a unit map
MIN_RENAMED_SHARE = 0.02  # a reference category must have held this share to count as renamed when it vanishes


def _top(values: pd.Series) -> tuple[Any, float]:
    """The most common present value and its share of all rows (missing included in the denominator); of equally
    common ones, the smallest."""
    numbers = values.to_numpy(np.float64, na_value=np.nan)
    present = numbers[~np.isnan(numbers)]
    if len(present) == 0:
        return None, 0.0
    unique, counts = np.unique(present, return_counts=True)
    top = int(np.argmax(counts))
    return unique[top], float(counts[top]) / len(values)


def numeric(reference: pd.Series, current: pd.Series, profile: NumericProfile | None) -> dict[str, Any]:
    """Missing share, the most common value, the KS p-value against the reference and, if moved, the best unit map."""
    profile = profile or profile_numeric(reference)
    values = pd.to_numeric(current, errors="coerce")
    cur = finite_values(values)
    top, top_share = _top(values)
    rows = max(len(values), 1)
    out: dict[str, Any] = {
        "type": "numeric", "rows": len(values), "missing": 1 - len(cur) / rows,
        "reference_missing": profile.missing / max(profile.count + profile.missing, 1),
        "top": None if top is None else float(top), "top_share": top_share,
        "reference_top_share": _reference_share(profile, top),
    }
    if len(cur) >= 2 and profile.count >= 2:
        out["p"] = float(ks_2samp(thinned(profile.values), thinned(cur)).pvalue)
        out["shift_stds"] = (float(cur.mean()) - profile.mean) / profile.std if profile.std > 0 else 0.0
        if out["p"] < SHIFTED_P:
            fit = best_fit(profile.values, cur)
            if fit is not None:
                out["unit"] = {"map": fit.describe(), "scale": fit.unit_map.scale, "offset": fit.unit_map.offset,
                               "p_after": fit.p_after}
    return out


def _reference_share(profile: NumericProfile, value: Any) -> float:
    if value is None or profile.count == 0:
        return 0.0
    hits = np.searchsorted(profile.values, value, "right") - np.searchsorted(profile.values, value, "left")
    return float(hits) / len(profile.values) * profile.count / (profile.count + profile.missing)


def categorical(reference: pd.Series, current: pd.Series, profile: CategoricalProfile | None) -> dict[str, Any]:
    """Missing share, chi-square p, unseen categories, and serving spellings that differ from the reference's."""
    profile = profile or profile_categorical(reference)
    served = profile_categorical(current.astype(object).where(current.notna(), None))
    rows = max(len(current), 1)
    ref_share = dict(zip(profile.categories, (profile.counts / max(profile.count, 1)).tolist(), strict=True))
    cur_share = dict(zip(served.categories, (served.counts / rows).tolist(), strict=True))
    unseen = {c: s for c, s in cur_share.items() if c not in ref_share}
    top, top_share = max(cur_share.items(), key=lambda kv: kv[1], default=(None, 0.0))
    out: dict[str, Any] = {
        "type": "categorical", "rows": len(current), "missing": served.missing / rows,
        "reference_missing": profile.missing / max(profile.count + profile.missing, 1),
        "top": top, "top_share": top_share, "reference_top_share": ref_share.get(str(top), 0.0),
        "unseen_share": sum(unseen.values()), "unseen": sorted(unseen, key=lambda c: -unseen[c])[:5],
        "respelled": respelled(unseen, ref_share), "renamed": renamed(unseen, ref_share, cur_share),
    }
    if served.count and profile.count:
        _, ref, cur = cat.align(profile, served.categories, served.counts)
        out["p"] = cat.chi2_homogeneity(ref, cur)[1]
    return out


def _spelling(value: str) -> str:
    return " ".join(value.split()).casefold()


def respelled(unseen: dict[str, float], reference: dict[str, float]) -> dict[str, str]:
    """Unseen serving values that are a reference category in another case or spacing: serving -> reference."""
    by_spelling = {_spelling(c): c for c in reference}
    return {c: by_spelling[_spelling(c)] for c in unseen if _spelling(c) in by_spelling}


def renamed(unseen: dict[str, float], reference: dict[str, float], current: dict[str, float]) -> dict[str, str]:
    """Reference categories that vanished while an unseen one took about their share: reference -> serving."""
    gone = {c: s for c, s in reference.items() if s >= MIN_RENAMED_SHARE and current.get(c, 0.0) < s / 10}
    pairs: dict[str, str] = {}
    fresh = {c: s for c, s in unseen.items() if _spelling(c) not in {_spelling(r) for r in reference}}
    for old, share in sorted(gone.items(), key=lambda kv: -kv[1]):
        close = [c for c, s in fresh.items() if 0.5 * share <= s <= 1.5 * share and c not in pairs.values()]
        if close:
            pairs[old] = min(close, key=lambda c: abs(fresh[c] - share))
    return pairs
