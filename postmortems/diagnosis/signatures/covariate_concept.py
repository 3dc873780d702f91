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
    """`explained`: moved features another signature accounts for (a unit change is no covariate shift)."""
    known = set(explained)
    shifted = [f for f in evidence.shifted() if f not in known]
    if not evidence.shifted() and predictions_moved(evidence):
        return []  # the model's answers moved on unmoved inputs: the model changed, not the world (prediction_shift)
    kpi: dict[str, Any] = evidence.numbers.get("kpi") or {}
    dropped = bool(evidence.breached("kpi", "estimated_kpi"))
    inputs = f"inputs moved ({', '.join(shifted[:4])}{' …' if len(shifted) > 4 else ''})" if shifted else ""
    measured, estimated, reference = kpi.get("measured"), kpi.get("estimated"), kpi.get("reference")
    metric = kpi.get("metric", "accuracy")
    if metric == "accuracy" and measured is not None and estimated is not None:
        margin = max(MIN_GAP, 3 * float(kpi.get("sampling_error", 0.0)))
        gap = estimated - measured
        ref = f"; reference {reference:.2f}" if reference is not None else ""
        if gap > margin and known:
            return []  # the inputs the model saw were broken (unit, skew, join): that, not the world, cost accuracy
        if gap > margin and (dropped or reference is None or measured < reference - MIN_GAP):
            reason = (f"accuracy from labels {measured:.2f} is {gap:.2f} below the {estimated:.2f} that the input "
                      f"shift alone explains (label-free estimate{ref})")
            return [Suggestion(Tag.concept_drift.value, round(min(0.95, 0.6 + gap), 2), reason, KEY)]
        if shifted:
            reason = f"{inputs} and accuracy held as the inputs explain: {measured:.2f} from labels vs " \
                     f"{estimated:.2f} estimated{ref}"
            return [Suggestion(Tag.covariate_shift.value, 0.8, reason, KEY)]
        return []
    if measured is not None and reference is not None:
        worse = measured > reference * 1.2 if metric == "mae" else measured < reference - MAX_HELD_DROP
        shown = f"{metric} {measured:.3g} from labels vs {reference:.3g} on the reference"
        if worse and not shifted:
            return [Suggestion(Tag.concept_drift.value, 0.7, f"{shown}, with no input shift", KEY)]
        if shifted and not worse and not dropped:
            return [Suggestion(Tag.covariate_shift.value, 0.75, f"{inputs} and the KPI held: {shown}", KEY)]
        if shifted:
            why = f"{inputs} and {shown}: no label-free estimate to tell how much the shift explains"
            return [Suggestion(tag.value, 0.4, why, KEY) for tag in (Tag.covariate_shift, Tag.concept_drift)]
        return []
    if not shifted:
        return []
    if estimated is not None and reference is not None and estimated >= reference - MAX_HELD_DROP:
        reason = f"{inputs}; no labels yet, estimated accuracy {estimated:.2f} holds (reference {reference:.2f})"
        return [Suggestion(Tag.covariate_shift.value, 0.65, reason, KEY)]
    return [Suggestion(Tag.covariate_shift.value, 0.5, f"{inputs}; no labels yet to tell it from concept drift", KEY)]
