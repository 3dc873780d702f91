"""Search work is bounded by a window of the newest matches: totals cap at it, facets and relevance cover it,
date-ordered pages go past it; the same on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from postmortems import search
from postmortems.taxonomy import load_index
from tests.postmortems.helpers import file, search_ids

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def six(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Six incidents a day apart, oldest first, and a window of four. All mention "cache"; only the two
    oldest have it in their title (which ranks first), and they are SEV1 and tagged config-change."""
    monkeypatch.setattr(search, "WINDOW", 4)
    ids = []
    for day in range(6):
        old = day < 2
        body = file(client, f"Cache outage {day}" if old else f"Ranking outage {day}",
                    summary="A stale cache served old features.", severity="SEV1" if old else "SEV3",
                    tags=["config-change"] if old else ["hmb-cache-invalidation"],
                    opened_at=(START + timedelta(days=day)).isoformat())
        ids.append(body["id"])
    return ids


def _get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/incidents", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_totals_cap_at_the_window_and_facets_count_the_newest(client: TestClient, six: list[int]) -> None:
    for params in ({"q": "cache"}, {}, {"q": "cache", "sort": "date"}):
        body = _get(client, **params)
        assert (body["total"], body["total_capped"], body["window"]) == (4, True, 4), params
        assert body["facets"]["severity"] == [["SEV3", 4]]
        assert body["facets"]["tag"] == [["hmb-cache-invalidation", 4]]
    within = _get(client, q="cache", severity="SEV1")  # two matches: exact, not capped
    assert (within["total"], within["total_capped"]) == (2, False)
    assert within["facets"]["severity"] == [["SEV1", 2]] and within["facets"]["tag"] == [["config-change", 2]]


def test_relevance_ranks_the_window_and_date_pages_go_past_it(client: TestClient, six: list[int]) -> None:
    # The title matches are older than the window, so relevance does not reach them.
    assert set(search_ids(client, q="cache")) == set(six[2:])
    assert set(search_ids(client, q="cache", severity="SEV1")) == set(six[:2])
    past_window = _get(client, q="cache", sort="date", limit=2, offset=4)["hits"]  # a page read on its own
    assert [(h["id"], h["tags"]) for h in past_window] == [(six[1], ["config-change"]), (six[0], ["config-change"])]
    newest_first = six[::-1]
    for offset in range(6):
        assert search_ids(client, q="cache", sort="date", limit=2, offset=offset) == newest_first[offset:offset + 2]
        assert search_ids(client, sort="date", limit=2, offset=offset) == newest_first[offset:offset + 2]


def test_planner_settings_last_only_for_the_searching_transaction(db: Engine) -> None:
    settings = text("SELECT current_setting('plan_cache_mode'), current_setting('max_parallel_workers_per_gather')")
    with Session(db) as session:
        before = tuple(session.execute(settings).one()) if db.dialect.name == "postgresql" else ()
        session.rollback()
        results = search.search(session, "cache", search.Filters(), load_index(session))
        assert (results.total, results.capped) == (0, False)
        if db.dialect.name == "postgresql":
            assert tuple(session.execute(settings).one()) == ("force_custom_plan", "0")
            session.rollback()
            assert tuple(session.execute(settings).one()) == before


def test_the_page_says_when_facets_cover_only_the_newest_matches(client: TestClient, six: list[int]) -> None:
    capped = client.get("/postmortems", params={"q": "cache"})
    assert capped.status_code == 200 and "Counts over the 4 newest matches." in capped.text
    exact = client.get("/postmortems", params={"q": "cache", "severity": "SEV1"})
    assert exact.status_code == 200 and "newest matches" not in exact.text


@pytest.mark.parametrize("walk_from", [0, 1_000_000])
def test_sqlite_reads_the_same_matches_by_either_plan(client: TestClient, six: list[int],
                                                      monkeypatch: pytest.MonkeyPatch, walk_from: int) -> None:
    """SQLite walks the date index past SQLITE_WALK_FROM matches and looks matches up by key below it;
    PostgreSQL ignores the setting. Every answer must be the same either way."""
    monkeypatch.setattr(search, "SQLITE_WALK_FROM", walk_from)
    body = _get(client, q="cache")
    assert (body["total"], body["total_capped"]) == (4, True)
    assert body["facets"]["tag"] == [["hmb-cache-invalidation", 4]]
    assert set(search_ids(client, q="cache")) == set(six[2:])
    assert search_ids(client, q="cache", severity="SEV1", sort="date") == six[1::-1]
    assert search_ids(client, q="stale -ranking", sort="date") == six[1::-1]
    assert search_ids(client, q="cache", tag="config-change", sort="date", limit=1, offset=1) == [six[0]]
    newest_first = six[::-1]
    assert search_ids(client, q="cache", sort="date", limit=2, offset=4) == newest_first[4:6]
