"""Fixtures shared by the event tests of this directory."""

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.factories import BuiltModels


@pytest.fixture
def mixed(client: TestClient, models: BuiltModels) -> str:
    """A registered model of two numeric features (one nullable) and a nullable categorical one; its name."""
    spec = factories.named_spec(features=[{"name": "f1", "type": "numeric"},
                                          {"name": "f2", "type": "numeric", "nullable": True},
                                          {"name": "color", "type": "categorical", "nullable": True}])
    response = factories.register(client, spec, models.named_primary, models.named_fallback, models.reference)
    assert response.status_code == 201, response.text
    return "mixed"
