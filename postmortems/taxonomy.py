"""Failure taxonomies stored as data (YAML/JSON -> the `taxonomy` table), and the tags a breach suggests.

Built-in: Watchtower's failure classes (the talk's handover / static-model / continuously-updated
classes), the 19 "How ML Breaks" root causes with their ML and distributed axes, and the GMF
technical failures. A team adds its own with POST /taxonomies; no migration is needed.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session, col, select

from postmortems.models import Taxonomy
from watchtower.errors import Conflict, Invalid, field_error
from watchtower.limits import SafeStr, explain

BUILTIN_DIR = Path(__file__).parent / "taxonomies"
KEY = r"^[a-z0-9][a-z0-9-]{0,99}$"


class Tag(StrEnum):
    """Keys of the built-in `watchtower` taxonomy that the diagnosis suggests (postmortems/diagnosis)."""

    feature_distribution_shift = "feature-distribution-shift"
    prediction_distribution_shift = "prediction-distribution-shift"
    training_serving_skew = "training-serving-skew"
    categorical_encoding_mismatch = "categorical-encoding-mismatch"
    unit_change = "unit-change"
    broken_join = "broken-join"
    missing_or_broken_feature = "missing-or-broken-feature"
    kpi_degradation = "kpi-degradation"
    covariate_shift = "covariate-shift"
    concept_drift = "concept-drift"
    model_or_preprocessing_change = "model-or-preprocessing-change"
    data_pipeline_failure = "data-pipeline-failure"
    config_change = "config-change"
    infrastructure_reliability = "infrastructure-reliability"
    serving_infrastructure = "serving-infrastructure"
    other = "other"


# Symptoms: what a breach of the detector shows, suggested as such; root causes come from the signatures.
_INPUT_DRIFT = [Tag.feature_distribution_shift]
SYMPTOMS_OF = {
    "evidently_drift": _INPUT_DRIFT, "stat_drift": _INPUT_DRIFT, "native_drift": _INPUT_DRIFT,
    "evidently_compatible_drift": _INPUT_DRIFT, "alibi_drift": _INPUT_DRIFT, "alibi_mmd_drift": _INPUT_DRIFT,
    "prediction_drift": [Tag.prediction_distribution_shift],
    "accuracy": [Tag.kpi_degradation], "classification_kpi": [Tag.kpi_degradation], "log_loss": [Tag.kpi_degradation],
    "regression_kpi": [Tag.kpi_degradation], "estimated_accuracy": [Tag.kpi_degradation],
    "business_kpi": [Tag.kpi_degradation],
    "feature_skew": [], "missing_values": [Tag.missing_or_broken_feature],
    "non_finite": [Tag.missing_or_broken_feature], "out_of_range": [Tag.missing_or_broken_feature],
    "unseen_categories": [], "schema_mismatch": [],
    "volume": [], "latency": [], "error_rate": [],
}
KPI_DETECTORS = frozenset(name for name, tags in SYMPTOMS_OF.items() if Tag.kpi_degradation in tags)


class TaxonomyNode(BaseModel):
    """One category; `parent` makes the tree, `root_cause` marks what can close a postmortem."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY)
    label: SafeStr = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, pattern=KEY)
    description: SafeStr = Field(default="", max_length=20_000)
    root_cause: bool = False
    ml: Literal["ml", "non-ml"] | None = None
    distributed: Literal["distributed", "less", "not"] | None = None
    # Keys of another taxonomy's nodes that this one corresponds to (watchtower -> how-ml-breaks).
    maps_to: list[Annotated[str, Field(pattern=KEY)]] | None = Field(default=None, max_length=20)


class TaxonomySpec(BaseModel):
    """A whole taxonomy as uploaded (JSON or YAML)."""

    model_config = ConfigDict(extra="forbid")
    namespace: str = Field(pattern=KEY)
    title: SafeStr = Field(min_length=1, max_length=200)
    description: SafeStr = Field(default="", max_length=100_000)
    nodes: list[TaxonomyNode] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _tree(self) -> "TaxonomySpec":
        keys = [n.key for n in self.nodes]
        if len(set(keys)) != len(keys):
            raise ValueError("node keys must be unique")
        parents = {n.key: n.parent for n in self.nodes}
        for node in self.nodes:
            seen, current = {node.key}, node.parent
            while current is not None:
                if current not in parents:
                    raise ValueError(f"node '{node.key}' names unknown parent '{current}'")
                if current in seen:
                    raise ValueError(f"node '{node.key}' is in a parent cycle")
                seen.add(current)
                current = parents[current]
        return self


@dataclass
class TaxonomyIndex:
    """Every node of every taxonomy, by key, with the tree to walk up and down."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)

    def descendants(self, key: str) -> set[str]:
        """The key and every key below it."""
        out, stack = set(), [key]
        while stack:
            current = stack.pop()
            out.add(current)
            stack += self.children.get(current, [])
        return out

    def ancestors(self, key: str) -> list[str]:
        """Parents of the key, nearest first."""
        out, current = [], self.nodes.get(key, {}).get("parent")
        while current:
            out.append(current)
            current = self.nodes.get(current, {}).get("parent")
        return out

    def is_root_cause(self, key: str) -> bool:
        return bool(self.nodes.get(key, {}).get("root_cause"))

    def label(self, key: str) -> str:
        return str(self.nodes.get(key, {}).get("label", key))


def load_index(session: Session) -> TaxonomyIndex:
    """All stored taxonomies as one index."""
    index = TaxonomyIndex()
    for taxonomy in session.exec(select(Taxonomy).order_by(col(Taxonomy.id))).all():
        for node in taxonomy.nodes:
            index.nodes[node["key"]] = node | {"namespace": taxonomy.namespace}
            if node.get("parent"):
                index.children.setdefault(node["parent"], []).append(node["key"])
    return index


def parse_spec(raw: bytes | str) -> TaxonomySpec:
    """A TaxonomySpec from JSON or YAML text; Invalid naming the field otherwise."""
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(raw)  # JSON is YAML, so one parser reads both
    except yaml.YAMLError as exc:
        raise Invalid(f"not JSON or YAML: {exc}", errors=[field_error("body", "not JSON or YAML")]) from exc
    try:
        return TaxonomySpec.model_validate(data)
    except ValidationError as exc:
        errors = [field_error(".".join(["body", *map(str, e["loc"])]), explain(e)) for e in exc.errors()]
        raise Invalid("invalid taxonomy", errors=errors) from exc


def add_taxonomy(session: Session, spec: TaxonomySpec, builtin: bool = False) -> Taxonomy:
    """Store a new taxonomy; its keys must not collide with another taxonomy's."""
    if session.exec(select(Taxonomy).where(Taxonomy.namespace == spec.namespace)).first() is not None:
        raise Conflict(f"taxonomy '{spec.namespace}' exists")
    taken = load_index(session).nodes
    clashes = [n.key for n in spec.nodes if n.key in taken]
    if clashes:
        raise Invalid(f"keys already used by other taxonomies: {clashes}",
                      errors=[field_error("body.nodes", f"key '{k}' is taken") for k in clashes])
    taxonomy = Taxonomy(namespace=spec.namespace, title=spec.title, description=spec.description,
                        nodes=[n.model_dump(exclude_none=True) for n in spec.nodes], builtin=builtin)
    session.add(taxonomy)
    session.flush()
    return taxonomy


def _builtin_spec(text: str) -> TaxonomySpec:
    """A shipped taxonomy, read by libyaml when PyYAML has it: every start-up reads them all, and the pure-Python
    parser (which parse_spec keeps for uploads, whose error messages it words) takes 6x as long."""
    return TaxonomySpec.model_validate(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def ensure_builtin(session: Session) -> None:
    """Store the shipped taxonomies, refreshing them when the files changed (they are data, not schema)."""
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        spec = _builtin_spec(path.read_text())
        stored = session.exec(select(Taxonomy).where(Taxonomy.namespace == spec.namespace)).first()
        nodes = [n.model_dump(exclude_none=True) for n in spec.nodes]
        if stored is None:
            session.add(Taxonomy(namespace=spec.namespace, title=spec.title, description=spec.description,
                                 nodes=nodes, builtin=True))
        elif stored.nodes != nodes or stored.title != spec.title:
            stored.nodes, stored.title, stored.description = nodes, spec.title, spec.description
            session.add(stored)
    session.flush()
