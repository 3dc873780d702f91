"""What a drift test measured on one feature, before any verdict; shared by the exact and the sketch modes."""

from dataclasses import dataclass, field
from typing import Literal

NumericTest = Literal["ks", "cvm", "wasserstein", "psi", "jensen_shannon", "tfdv_jsd"]
CategoricalTest = Literal["chi2", "z", "fisher", "psi", "jensen_shannon", "linf"]
DistanceTest = Literal["wasserstein", "psi", "jensen_shannon", "tfdv_jsd", "linf"]
DEFAULT_THRESHOLDS: dict[str, float] = {"wasserstein": 0.1, "psi": 0.2, "jensen_shannon": 0.1, "tfdv_jsd": 0.1,
                                        "linf": 0.1}


@dataclass(frozen=True)
class Measured:
    """One test on one feature, before any verdict: statistic, p-value (for tests) and effect size."""

    feature: str
    kind: Literal["numeric", "categorical"]
    test: str
    statistic: float
    p_value: float | None
    effect: float
    extra: dict[str, float] = field(default_factory=dict)
