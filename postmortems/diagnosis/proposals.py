"""Guard proposals: detectors with params, pre-filled from an incident's evidence, that would catch it again.

The input is the evidence dict stored on the incident (`checks` with their breached findings), so a later
source of evidence (the diagnosis signatures) can feed the same function by adding checks or findings.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detectors.base import DATASET

# Detectors whose breach means a numeric feature's values moved: a range check pins them next time.
SHIFT_DETECTORS = frozenset({"native_drift", "ks_drift", "stat_drift", "evidently_drift", "evidently_compat",
                             "alibi_drift", "out_of_range"})
RANGE_SHARE = 0.01  # out_of_range breaches above 1% of values outside the reference span
VOLUME_DROP = 0.5  # the floor: half the expected events
VOLUME_SPIKE = 1000.0  # a floor only: spikes are another check's business


@dataclass(frozen=True)
class GuardProposal:
    """A detector to add to a monitor of the affected model, and why it would have caught this incident."""

    monitor: str
    detector: str
    params: dict[str, Any] = field(hash=False)
    reason: str


def propose_guards(evidence: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]],
                   params_by_run: Mapping[int, Mapping[str, Any]] | None = None) -> list[GuardProposal]:
    """Proposals from the breached findings: a range check on shifted numeric features (bounds from the
    reference, `ranges`), a skew check between the stages whose skew fired (`params_by_run`: each check run's
    params), and a volume floor when volume dropped."""
    default_monitor = str(evidence.get("monitor", "default"))
    shifted: dict[str, list[str]] = {}  # monitor -> features
    proposals = []
    for check in evidence.get("checks", []):
        if check.get("status") != "breached":
            continue
        monitor, detector = str(check.get("monitor") or default_monitor), str(check["detector"])
        findings = [f for f in check.get("findings", []) if f.get("feature") != DATASET]
        if detector in SHIFT_DETECTORS:
            features = shifted.setdefault(monitor, [])
            features += [f["feature"] for f in findings if f["feature"] in ranges and f["feature"] not in features]
        elif detector == "feature_skew":
            proposals.append(_skew(monitor, findings, (params_by_run or {}).get(check.get("check_run_id", -1), {})))
        elif detector == "volume":
            proposals += [_floor(monitor, f, evidence.get("window", {})) for f in check.get("findings", [])
                          if f.get("test") == "volume_drop"]
    for monitor, features in shifted.items():
        if features:
            bounds = "; ".join(f"{f} in [{ranges[f][0]:.4g}, {ranges[f][1]:.4g}]" for f in features)
            proposals.insert(0, GuardProposal(
                monitor, "out_of_range", {"features": features, "max_share": RANGE_SHARE},
                f"values outside the reference range ({bounds}) breach above {RANGE_SHARE:.0%} of a window"))
    return proposals


def _skew(monitor: str, findings: list[Mapping[str, Any]], params: Mapping[str, Any]) -> GuardProposal:
    stages = {k: params[k] for k in ("baseline_stage", "compare_stage") if k in params}
    features = sorted({str(f["feature"]) for f in findings})
    between = f"{stages.get('baseline_stage', 'training')} and {stages.get('compare_stage', 'serving')}"
    return GuardProposal(monitor, "feature_skew", {**stages, "max_mismatch_rate": 0.01},
                         f"the same ids' features differed between {between} ({', '.join(features)})")


def _floor(monitor: str, finding: Mapping[str, Any], window: Mapping[str, Any]) -> GuardProposal:
    expected = finding.get("expected")
    rate = finding.get("expected_per_hour") or _per_hour(expected, window)
    params: dict[str, Any] = {"max_drop": VOLUME_DROP, "max_spike": VOLUME_SPIKE}
    if rate:
        params["expected_per_hour"] = round(float(rate), 3)
    seen = f"{finding.get('score', 0):g} events where {expected:g} were expected" if expected else "volume dropped"
    return GuardProposal(monitor, "volume", params, f"{seen}; a floor at {1 - VOLUME_DROP:.0%} of the expected rate")


def _per_hour(expected: Any, window: Mapping[str, Any]) -> float | None:
    try:
        hours = (datetime.fromisoformat(window["end"]) - datetime.fromisoformat(window["start"])).total_seconds() / 3600
    except (KeyError, TypeError, ValueError):
        return None
    return float(expected) / hours if expected and hours > 0 else None
