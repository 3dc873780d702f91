"""Every postmortem test that touches a database also checks that search's copies stayed current."""

from collections.abc import Iterator

import pytest

from tests.postmortems.helpers import stale_documents


@pytest.fixture(autouse=True)
def documents_stay_current(request: pytest.FixtureRequest) -> Iterator[None]:
    if "db" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("db")  # set up first, so this check runs before its teardown empties it
    yield
    assert stale_documents(engine) == []
