"""Prediction shift without input shift: the model or its preprocessing changed, not the data."""

from postmortems.diagnosis.evidence import Evidence, Suggestion, p_text
from postmortems.diagnosis.signatures.covariate_concept import predictions_moved
from postmortems.taxonomy import Tag

KEY = "prediction_shift"


def suggest(evidence: Evidence) -> list[Suggestion]:
    """Predictions moved (by the numbers or prediction_drift) while no input feature did; labels, when there are
    some, show what it cost."""
    prediction = evidence.numbers.get("prediction") or {}
    flagged = evidence.breached("prediction_drift")
    if not predictions_moved(evidence) or evidence.shifted() or not evidence.features:
        return []
    if "class" in prediction:
        what = (f"class {prediction['class']} is {prediction['share']:.0%} of predictions vs "
                f"{prediction['reference_share']:.0%} in the reference (p {p_text(prediction['p'])})")
    elif "mean" in prediction:
        what = (f"mean prediction {prediction['mean']:.3g} vs {prediction['reference_mean']:.3g} in the reference "
                f"(KS p {p_text(prediction['p'])})")
    else:
        what = f"prediction_drift breached ({flagged[0]['test']} {flagged[0]['score']:.3g})"
    calmest = min((n.get("p", 1.0) for n in evidence.features.values()), default=1.0)
    reason = f"predictions moved: {what}, while no input feature did (smallest p {p_text(calmest)})"
    kpi = evidence.numbers.get("kpi") or {}
    if kpi.get("metric") == "accuracy" and kpi.get("measured") is not None and kpi.get("reference") is not None:
        reason += f"; accuracy from labels {kpi['measured']:.2f} vs {kpi['reference']:.2f} on the reference"
    return [Suggestion(Tag.model_or_preprocessing_change.value, 0.8, reason, KEY)]
