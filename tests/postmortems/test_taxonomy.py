"""Every detector's breach suggests tags, and those tags exist in the built-in taxonomy."""

import yaml

from detectors import registry
from postmortems.taxonomy import BUILTIN_DIR, SUGGESTED_BY


def test_every_detector_suggests_tags_that_exist_in_the_builtin_taxonomy() -> None:
    assert set(registry.names()) <= set(SUGGESTED_BY)
    keys = {node["key"] for node in yaml.safe_load((BUILTIN_DIR / "watchtower.yaml").read_text())["nodes"]}
    assert {tag.value for tags in SUGGESTED_BY.values() for tag in tags} <= keys
