"""The built-in taxonomy covers every detector's symptoms and every diagnosis signature, with its axes and its
How-ML-Breaks counterparts; existing keys keep working."""

import yaml

from detectors import registry
from postmortems.taxonomy import BUILTIN_DIR, SYMPTOMS_OF, Tag

OLD_KEYS = set("""handover-failure training-serving-skew feature-definition-change unrepresentative-validation-data
static-model-failure feature-distribution-shift prediction-distribution-shift kpi-degradation concept-drift
continuously-updated-model-failure weak-safety-checks non-reproducible-model infrastructure-reliability data-quality
missing-or-broken-feature data-pipeline-failure config-change other""".split())
CLASSES = {"handover-failure", "static-model-failure", "continuously-updated-model-failure"}


def _nodes(name: str) -> dict[str, dict[str, object]]:
    return {n["key"]: n for n in yaml.safe_load((BUILTIN_DIR / f"{name}.yaml").read_text())["nodes"]}


def _top(nodes: dict[str, dict[str, object]], key: str) -> str:
    while nodes[key].get("parent"):
        key = str(nodes[key]["parent"])
    return key


def test_every_detector_has_symptoms_that_exist_in_the_builtin_taxonomy() -> None:
    assert set(registry.names()) <= set(SYMPTOMS_OF)
    keys = set(_nodes("watchtower"))
    assert {tag.value for tags in SYMPTOMS_OF.values() for tag in tags} <= keys
    assert {tag.value for tag in Tag} <= keys and OLD_KEYS <= keys


def test_every_suggested_tag_sits_under_a_class_of_the_talk_with_its_ml_axis() -> None:
    nodes = _nodes("watchtower")
    for tag in Tag:
        if tag in (Tag.other, Tag.config_change):
            continue
        assert _top(nodes, tag.value) in CLASSES, tag
        assert nodes[tag.value].get("ml") in ("ml", "non-ml"), tag


def test_signature_nodes_map_onto_how_ml_breaks_categories_that_exist() -> None:
    nodes, hmb = _nodes("watchtower"), _nodes("how-ml-breaks")
    mapped = {key: node["maps_to"] for key, node in nodes.items() if node.get("maps_to")}
    assert {"unit-change", "broken-join", "covariate-shift", "concept-drift", "serving-infrastructure"} <= set(mapped)
    assert mapped["broken-join"] == ["hmb-failed-join"]
    assert all(target in hmb for targets in mapped.values() for target in targets)  # type: ignore[attr-defined]
    assert nodes["serving-infrastructure"]["distributed"] == "distributed"
