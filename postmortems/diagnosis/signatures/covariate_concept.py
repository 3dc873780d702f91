"""Covariate shift vs concept drift: did the KPI measured from labels fall further than the label-free estimate
(CBPE) expects from the input shift alone? Both numbers go in the reason."""

from collections.abc import Iterable
from typing import Any

from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.taxonomy import Tag

KEY = "covariate_concept"
MIN_GAP = 0.03  # accuracy points below the estimate that count as concept drift (or 3 sampling errors if wider)
MAX_HELD_DROP = 0.05  # a KPI within this of the reference held
MOVED_P = 1e-3  # predictions moved below this p-value


def predictions_moved(evidence: Evidence) -> bool:
    """The predictions' distribution moved (by the numbers, or prediction_drift breached)."""
    prediction = evidence.numbers.get("prediction") or {}
    return prediction.get("p", 1.0) < MOVED_P or bool(evidence.breached("prediction_drift"))


def suggest(evidence: Evidence, explained: Iterable[str] = ()) -> list[Suggestion]:
    """`explained`: moved features another signature accounts for (a unit change is no covariate shift, and the
    accuracy it costs is no concept drift)."""
    known = set(explained)
    if not evidence.shifted() and predictions_moved(evidence):
        return []  # the model's answers moved on unmoved inputs: the model changed, not the world (prediction_shift)
    shifted = [f for f in evidence.shifted() if f not in known]
    inputs = f"inputs moved ({', '.join(shifted[:4])}{' …' if len(shifted) > 4 else ''})" if shifted else ""
    kpi: dict[str, Any] = evidence.numbers.get("kpi") or {}
    dropped = bool(evidence.breached("kpi", "estimated_kpi"))
    if kpi.get("metric", "accuracy") == "accuracy" and kpi.get("measured") is not None \
            and kpi.get("estimated") is not None:
        return _against_estimate(kpi, inputs, dropped, broken_inputs=bool(known))
    if kpi.get("measured") is not None and kpi.get("reference") is not None:
        return _against_reference(kpi, inputs, dropped, broken_inputs=bool(known))
    if not inputs:
        return []
    estimated, reference = kpi.get("estimated"), kpi.get("reference")
    if estimated is not None and reference is not None and estimated >= reference - MAX_HELD_DROP:
        reason = f"{inputs}; no labels yet, estimated accuracy {estimated:.2f} holds (reference {reference:.2f})"
        return [Suggestion(Tag.covariate_shift.value, 0.65, reason, KEY)]
    return [Suggestion(Tag.covariate_shift.value, 0.5, f"{inputs}; no labels yet to tell it from concept drift", KEY)]


def _against_estimate(kpi: dict[str, Any], inputs: str, dropped: bool, broken_inputs: bool) -> list[Suggestion]:
    """Accuracy from labels against the label-free estimate, which already accounts for the input shift."""
    measured, estimated, reference = kpi["measured"], kpi["estimated"], kpi.get("reference")
    margin = max(MIN_GAP, 3 * float(kpi.get("sampling_error", 0.0)))
    gap = estimated - measured
    ref = f"; reference {reference:.2f}" if reference is not None else ""
    if gap > margin and broken_inputs:
        return []  # the inputs the model saw were broken (unit, skew, join): that, not the world, cost accuracy
    if gap > margin and (dropped or reference is None or measured < reference - MIN_GAP):
        reason = (f"accuracy from labels {measured:.2f} is {gap:.2f} below the {estimated:.2f} that the input "
                  f"shift alone explains (label-free estimate{ref})")
        return [Suggestion(Tag.concept_drift.value, round(min(0.95, 0.6 + gap), 2), reason, KEY)]
    if inputs:
        reason = f"{inputs} and accuracy held as the inputs explain: {measured:.2f} from labels vs " \
                 f"{estimated:.2f} estimated{ref}"
        return [Suggestion(Tag.covariate_shift.value, 0.8, reason, KEY)]
    return []


def _against_reference(kpi: dict[str, Any], inputs: str, dropped: bool, broken_inputs: bool) -> list[Suggestion]:
    """Without an estimate (a regressor, no probabilities): the KPI from labels against the reference's."""
    metric, measured, reference = kpi.get("metric", "accuracy"), kpi["measured"], kpi["reference"]
    worse = measured > reference * 1.2 if metric == "mae" else measured < reference - MAX_HELD_DROP
    shown = f"{metric} {measured:.3g} from labels vs {reference:.3g} on the reference"
    if worse and not inputs and not broken_inputs:
        return [Suggestion(Tag.concept_drift.value, 0.7, f"{shown}, with no input shift", KEY)]
    if inputs and not worse and not dropped:
        return [Suggestion(Tag.covariate_shift.value, 0.75, f"{inputs} and the KPI held: {shown}", KEY)]
    if inputs:
        why = f"{inputs} and {shown}: no label-free estimate to tell how much the shift explains"
        return [Suggestion(tag.value, 0.4, why, KEY) for tag in (Tag.covariate_shift, Tag.concept_drift)]
    return []
