"""Ranked full-text search with snippets and facets; the same matches on SQLite (FTS5) and PostgreSQL (tsvector)."""

from typing import Any

from fastapi.testclient import TestClient

from postmortems.search import fts5_query, parse, tsquery
from tests.postmortems.helpers import file, move, search_ids

CORPUS = [
    ("Feature store served stale embeddings", "The ranking model read embeddings from a stale cache.",
     ["hmb-cache-invalidation"], "SEV2"),
    ("Training data excluded Android users", "A config change filtered 40% of examples before training.",
     ["config-change"], "SEV1"),
    ("Drifting click features after app release", "Click-through features drifted when the new app shipped.",
     ["feature-distribution-shift"], "SEV3"),
    ("Labels joined late", "Late joins defaulted labels to negative; the model learned to predict no clicks.",
     ["hmb-failed-join"], "SEV2"),
]


def _corpus(client: TestClient) -> list[int]:
    return [file(client, title, summary=summary, tags=tags, severity=sev)["id"]
            for title, summary, tags, sev in CORPUS]


def test_words_phrases_exclusions_and_stemming(client: TestClient) -> None:
    store, config, drift, labels = _corpus(client)
    assert search_ids(client, q="embeddings") == [store]
    assert search_ids(client, q="drift") == [drift]  # "Drifting", "drifted": stems
    assert set(search_ids(client, q="features")) == {store, drift}  # "Feature store", "click features"
    assert search_ids(client, q='"stale cache"') == [store]
    assert search_ids(client, q='"cache stale"') == []
    assert set(search_ids(client, q="model -embeddings")) == {labels}
    assert search_ids(client, q="the of and") == search_ids(client, sort="date")  # stop words only: no text filter
    assert search_ids(client, q="android EXAMPLES") == [config]
    assert search_ids(client, q="nonexistentword") == []
    assert search_ids(client, q="stale; DROP TABLE incident; --") == []


def test_ranking_snippets_and_notes_are_searched(client: TestClient) -> None:
    store, _, drift, _ = _corpus(client)
    client.post(f"/incidents/{drift}/notes", json={"author": "ana", "text": "Root cause: the stale feature cache."})
    body = client.get("/incidents", params={"q": "stale"}).json()
    assert [h["id"] for h in body["hits"]] == [store, drift]  # title match ranks above a note match
    assert body["hits"][0]["score"] > body["hits"][1]["score"] > 0
    assert "<mark>stale</mark>" in body["hits"][1]["snippet"].lower()
    client.post(f"/incidents/{store}/notes", json={"author": "ana", "text": "<b>not bold</b> stale"})
    escaped = client.get("/incidents", params={"q": "bold"}).json()["hits"][0]["snippet"]
    # The index holds text without angle brackets, so both engines see the same words ("b", "not", "bold").
    assert "<b>" not in escaped and "<mark>bold</mark>" in escaped
    assert search_ids(client, q="b bold") == [store]  # PostgreSQL alone would have dropped <b> as markup


def test_facets_filters_sort_and_pages(client: TestClient) -> None:
    store, config, drift, labels = _corpus(client)
    everything = client.get("/incidents").json()
    assert everything["total"] == 4
    assert dict(everything["facets"]["severity"]) == {"SEV2": 2, "SEV1": 1, "SEV3": 1}
    assert dict(everything["facets"]["status"]) == {"open": 4}
    assert ("config-change", 1) in [tuple(f) for f in everything["facets"]["tag"]]
    assert search_ids(client, severity="SEV2", sort="date") == [labels, store]
    assert search_ids(client, tag="hmb") == [labels, store]  # the parent finds its children
    assert search_ids(client, tag="static-model-failure") == [drift]
    assert search_ids(client, status="resolved") == []
    page = client.get("/incidents", params={"limit": 2, "offset": 2, "sort": "date"}).json()
    assert page["total"] == 4 and [h["id"] for h in page["hits"]] == [config, store]
    assert search_ids(client, opened_from="2999-01-01") == []
    bad = client.get("/incidents", params={"tag": "nope"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.tag"


def test_filters_and_facets_follow_every_change(client: TestClient) -> None:
    """Search filters on copies kept beside the text; each kind of change must reach them."""
    iid = file(client, "Stale cache after deploy", tags=["hmb-cache-invalidation"], severity="SEV3")["id"]
    assert search_ids(client, q="stale", severity="SEV3", tag="hmb") == [iid]
    client.patch(f"/incidents/{iid}", json={"author": "cy", "severity": "SEV1"})
    assert search_ids(client, q="stale", severity="SEV3") == []
    assert search_ids(client, q="stale", severity="SEV1") == [iid]
    assert move(client, iid, "acknowledged").status_code == 200
    assert search_ids(client, status="open") == [] and search_ids(client, status="acknowledged") == [iid]
    client.put(f"/incidents/{iid}/tags/hmb-cache-invalidation", json={"author": "cy", "confidence": "rejected"})
    assert search_ids(client, tag="hmb") == []
    client.put(f"/incidents/{iid}/tags/config-change", json={"author": "cy"})
    assert search_ids(client, q="stale", tag="config-change") == [iid]
    facets = client.get("/incidents", params={"q": "stale"}).json()["facets"]
    assert facets["tag"] == [["config-change", 1]] and facets["severity"] == [["SEV1", 1]]
    assert facets["status"] == [["acknowledged", 1]]
    assert client.get("/incidents", params={"q": "stale"}).json()["hits"][0]["tags"] == ["config-change"]


def test_query_translation_is_the_same_for_both_engines() -> None:
    clauses = parse('Drift "feature store" -cache the of')
    assert [c.words for c in clauses] == [("drift",), ("feature", "store"), ("cache",)]
    assert fts5_query(clauses) == '"drift" AND "feature store" NOT "cache"'
    assert tsquery(clauses) == "('drift') & ('feature' <-> 'store') & !('cache')"
    assert fts5_query(parse("-only")) is None and tsquery(parse("")) is None
    assert parse("mean_radius")[0].words == ("mean", "radius")  # both engines split on underscores


def _hits(body: dict[str, Any]) -> list[int]:
    return [h["id"] for h in body["hits"]]


def test_a_query_of_exclusions_only_excludes(client: TestClient) -> None:
    store, config, drift, labels = _corpus(client)
    temp = file(client, "Temp files filled the disk", summary="The temp directory grew until writes failed.")["id"]
    assert set(search_ids(client, q="-temp")) == {store, config, drift, labels}  # was: every incident
    assert set(search_ids(client, q="-temp -embeddings")) == {config, drift, labels}
    assert set(search_ids(client, q='-"stale cache" -temp')) == {config, drift, labels}
    assert search_ids(client, q="-temp", tag="hmb", sort="date") == [labels, store]
    assert search_ids(client, q="-temps") == search_ids(client, sort="date")[1:]  # stems: temps -> temp
    assert search_ids(client, q="disk -temp") == []
    assert temp in search_ids(client, q="-embeddings")
    assert client.get("/incidents", params={"q": "-temp"}).json()["total"] == 4


def test_snippets_keep_angle_brackets(client: TestClient) -> None:
    iid = file(client, "Threshold <= 0 after deploy",
               summary="Alert fired when p < 0.05 and latency > 200ms; the <b>bold</b> tag is text.")["id"]
    hit = client.get("/incidents", params={"q": "latency"}).json()["hits"][0]
    assert hit["id"] == iid
    # JSON: the text as written, with where the match is; HTML: escaped, the match in <mark>.
    assert "p < 0.05 and latency > 200ms; the <b>bold</b> tag" in hit["snippet_text"]
    start, end = hit["highlights"][0]
    assert hit["snippet_text"][start:end].lower() == "latency"
    assert "p &lt; 0.05 and <mark>latency</mark> &gt; 200ms; the &lt;b&gt;bold&lt;/b&gt; tag" in hit["snippet"]
    page = client.get("/postmortems", params={"q": "latency"}).text
    assert "p &lt; 0.05 and <mark>latency</mark> &gt; 200ms" in page and "<b>bold</b>" not in page
    # Words next to brackets are still words, on both engines.
    assert search_ids(client, q="b bold") == [iid]
    assert search_ids(client, q="200ms") == [iid]
