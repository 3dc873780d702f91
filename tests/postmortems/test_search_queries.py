"""The search page and the JSON search read a page of hits in a fixed number of statements, whatever the hits."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests import factories
from tests.factories import BuiltModels
from tests.postmortems.helpers import file


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _count(db: Engine, get: Callable[[], Any]) -> int:
    with statements(db) as seen:
        response = get()
    assert response.status_code == 200, response.text
    return len(seen)


def test_a_search_page_costs_the_same_statements_for_1_or_20_hits(client: TestClient, db: Engine,
                                                                  models: BuiltModels) -> None:
    for name in ("churn", "fraud"):
        factories.register_tensor(client, models, name=name)
    file(client, "cache drift on churn", models=["churn"], tags=["config-change"])

    def page() -> Any:
        return client.get("/postmortems", params={"q": "drift"})

    def api() -> Any:
        return client.get("/incidents", params={"q": "drift"})

    page(), api()  # warm: the taxonomy index and prepared plans are per process
    one_page, one_api = _count(db, page), _count(db, api)
    for i in range(24):  # more than a page (20), over two models, with tags
        file(client, f"drift number {i}", summary=f"a drift in feature f{i}", models=["churn" if i % 2 else "fraud"],
             tags=["config-change"] if i % 3 else ["hmb-cache-invalidation"])
    full = page()
    assert full.text.count('<tr class="incident">') == 20 and "25 incidents" in full.text
    assert "<mark>drift</mark>" in full.text and "hmb-cache-invalidation" in full.text
    assert _count(db, page) == one_page and _count(db, api) == one_api
    assert one_page <= one_api + 1  # the page reads what the API reads (and the session's user, at most)
