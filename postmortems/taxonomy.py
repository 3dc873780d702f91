"""Failure taxonomy tags, and which ones the evidence of a breach suggests.

The vocabulary follows ../shared/notes/failure-taxonomy.md: the talk's handover / static-model
classes and the "How ML Breaks" categories that detectors can see.
"""

from collections.abc import Iterable
from enum import StrEnum


class Tag(StrEnum):
    """A failure kind an incident can be tagged with."""

    feature_distribution_shift = "feature-distribution-shift"
    prediction_distribution_shift = "prediction-distribution-shift"
    training_serving_skew = "training-serving-skew"
    missing_or_broken_feature = "missing-or-broken-feature"
    kpi_degradation = "kpi-degradation"
    concept_drift = "concept-drift"
    data_pipeline_failure = "data-pipeline-failure"
    config_change = "config-change"
    other = "other"


# detector name -> tags its breach suggests
SUGGESTED_BY = {
    "evidently_drift": [Tag.feature_distribution_shift],
    "stat_drift": [Tag.feature_distribution_shift],
    "prediction_drift": [Tag.prediction_distribution_shift],
    "accuracy": [Tag.kpi_degradation],
    "missing_values": [Tag.missing_or_broken_feature, Tag.data_pipeline_failure],
}


def suggest(breached_detectors: Iterable[str], drifted_share: float) -> list[Tag]:
    """Tags for what fired; most features shifting at once points at a handover (skew), not the world."""
    tags: list[Tag] = []
    for name in breached_detectors:
        tags += [t for t in SUGGESTED_BY.get(name, []) if t not in tags]
    if drifted_share > 0.5 and Tag.feature_distribution_shift in tags:
        tags.append(Tag.training_serving_skew)
    if Tag.kpi_degradation in tags and Tag.feature_distribution_shift not in tags:
        tags.append(Tag.concept_drift)
    return tags
