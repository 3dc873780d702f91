"""Ranked full-text search over incidents with facets: FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL.

Queries are parsed once into words, "quoted phrases" and -exclusions, then written in each engine's
syntax. Both stem English (Porter / Snowball) and both ignore English stop words, so the same query
finds the same incidents on either database.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, Literal

from sqlalchemy import Text, column, exists, func, literal, literal_column, not_, null, table, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from postmortems.models import Incident, IncidentDocument, IncidentTag
from postmortems.snippets import Snippet, passages
from postmortems.taxonomy import TaxonomyIndex

STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can did do does doing don down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own s same she should so some such t than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with you your yours yourself yourselves""".split())
_TOKEN = re.compile(r"-?\"[^\"]*\"|\S+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# The bound that keeps a query's cost independent of how many incidents it matches: the WINDOW newest
# matches are found once, and give the total (exact up to WINDOW), the facet counts and the ranking.
# 500, not 1,000: at 1,000 a broad word with a tag filter took p95 67.5 ms on PostgreSQL (bench/README.md).
WINDOW = 500
# Search reads incident_document only: it holds the text and copies of what filters and facets need.
DOC = IncidentDocument
NEWEST = (col(DOC.opened_at).desc(), col(DOC.incident_id).desc())
# SQLite: above this many full-text or tag matches, walk the newest-first index (see _full_text, _tagged).
SQLITE_WALK_FROM = 5_000
# `tsv` is a generated column the migrations add on PostgreSQL, not part of the model.
_TSV: ColumnElement[Any] = literal_column("incident_document.tsv")
_FTS = table("incident_fts", column("rowid"))  # SQLite's FTS5 index of incident_document


@dataclass(frozen=True)
class Clause:
    """One word, or a phrase of adjacent words; `negated` excludes matches."""

    words: tuple[str, ...]
    negated: bool = False


def parse(query: str) -> list[Clause]:
    """Words, "phrases" and -exclusions; stop words and punctuation dropped (as PostgreSQL would)."""
    clauses = []
    for token in _TOKEN.findall(query.lower()):
        negated = token.startswith("-") and len(token) > 1
        words = tuple(w for w in _WORD.findall(token) if w not in STOPWORDS)
        if words:
            clauses.append(Clause(words, negated))
    return clauses[:32]


def fts5_query(clauses: list[Clause]) -> str | None:
    """FTS5 MATCH text for the positive terms minus the negated ones; None without a positive term."""
    positive = [c for c in clauses if not c.negated]
    if not positive:
        return None
    match = " AND ".join(f'"{" ".join(c.words)}"' for c in positive)
    return match + "".join(f' NOT "{" ".join(c.words)}"' for c in clauses if c.negated)


def _pg_term(c: Clause) -> str:
    return "(" + " <-> ".join(f"'{w}'" for w in c.words) + ")"


def tsquery(clauses: list[Clause], any_term: bool = False) -> str | None:
    """PostgreSQL tsquery text; `any_term` ORs the positive terms (for highlighting in a body that may
    hold only some of them, as when a word matched the title)."""
    positive = [c for c in clauses if not c.negated]
    if not positive:
        return None
    if any_term:
        return " | ".join(_pg_term(c) for c in positive)
    return " & ".join([_pg_term(c) for c in positive] + [f"!{_pg_term(c)}" for c in clauses if c.negated])


def excluded(session: Session, dialect: str, negated: list[Clause]) -> ColumnElement[bool]:
    """The condition that a document matches none of `negated`: a query of -exclusions only (`-temp`) means
    every incident without those words, not every incident.

    Both engines keep walking the newest-first index and drop the matches: SQLite reads the excluded ids
    from FTS5 once, PostgreSQL tests each row's tsvector.
    """
    if dialect == "postgresql":
        matches: ColumnElement[bool] = _TSV.op("@@")(_tsquery(" | ".join(_pg_term(c) for c in negated)))
        return not_(matches)
    match = " OR ".join(f'"{" ".join(c.words)}"' for c in negated)
    ids = sa_select(_FTS.c.rowid).where(literal_column("incident_fts").op("MATCH")(match))
    condition: ColumnElement[bool] = col(DOC.incident_id).not_in(ids)
    return condition


@dataclass
class Filters:
    """Facet filters; tags include everything below them in the taxonomy."""

    tags: list[str] = field(default_factory=list)
    model_ids: list[int] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    opened_from: datetime | None = None
    opened_to: datetime | None = None


@dataclass
class Hit:
    incident: Incident
    score: float | None
    snippet: Snippet
    tags: list[str]  # not rejected, sorted: the search document's copy


@dataclass
class Results:
    """A page of hits. When `capped`, more than WINDOW incidents matched: `total` is WINDOW (a lower bound),
    and the facets count, and relevance ranks, the WINDOW newest matches only."""

    hits: list[Hit]
    total: int
    facets: dict[str, list[tuple[str, int]]]
    capped: bool = False


def search(session: Session, q: str, filters: Filters, index: TaxonomyIndex, *,
           sort: Literal["relevance", "date"] = "relevance", limit: int = 20, offset: int = 0,
           with_facets: bool = True) -> Results:
    """One page of matching incidents, the total (exact up to WINDOW), and facet counts.

    Bounded work, whatever the query: one statement over incident_document finds the WINDOW + 1 newest
    matches with their facet values and, on PostgreSQL, their rank (it walks the newest-first index when
    most incidents match, and the full-text or tag index when few do); the total, the facets and the
    relevance order all come from those rows.
    """
    clauses = parse(q)
    dialect = session.get_bind().dialect.name
    match = tsquery(clauses) if dialect == "postgresql" else fts5_query(clauses)
    if dialect == "postgresql":
        _plan_each_search(session)
    conditions = _conditions(session, dialect, filters, index)
    if match is not None:
        conditions.append(_full_text(session, dialect, match))
    elif any(c.negated for c in clauses):
        conditions.append(excluded(session, dialect, [c for c in clauses if c.negated]))
    ranked = match is not None and sort == "relevance"
    rows = _newest(session, dialect, match, conditions, ranked=ranked)
    capped = len(rows) > WINDOW
    window = rows[:WINDOW]
    newest_ids: list[int] = [row.incident_id for row in window]
    tags: dict[int, list[str]] = {row.incident_id: row.tags for row in window}
    scores: dict[int, float] = {}
    if ranked:
        assert match is not None
        scores = {row.incident_id: float(row.rank) for row in window} if dialect == "postgresql" else \
            _bm25(session, match, newest_ids)
        # sorted() is stable, so equal ranks stay newest first.
        ids = sorted(newest_ids, key=lambda i: -scores.get(i, 0.0))[offset:offset + limit]
    elif offset + limit <= len(window) or not capped:
        ids = newest_ids[offset:offset + limit]
    else:  # date order past the window: a page of its own from the same index walk
        page = sa_select(col(DOC.incident_id), col(DOC.tags)).where(*conditions).order_by(*NEWEST)
        tags = dict(session.execute(page.limit(limit).offset(offset)).tuples().all())
        ids = list(tags)
    incidents = {i.id: i for i in session.exec(select(Incident).where(col(Incident.id).in_(ids))).all()} if ids else {}
    highlight = tsquery(clauses, any_term=True) if dialect == "postgresql" else match
    snippets = passages(session, dialect, highlight, ids) if highlight is not None else {}
    hits = [Hit(incidents[i], scores.get(i), snippets.get(i) or Snippet(incidents[i].summary[:240]), tags[i])
            for i in ids if i in incidents]
    facets = _facets(session, window) if with_facets else {}
    return Results(hits, len(window), facets, capped=capped)


def _plan_each_search(session: Session) -> None:
    """For the rest of this transaction, plan statements for their own values and without parallel workers.

    A generic plan (psycopg prepares a statement after 5 runs) cannot see the words, guesses 500 matches,
    and reads every match through the GIN index even for a word in 93% of the documents; and starting
    parallel workers costs more than these bounded statements take.
    """
    session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                         "set_config('max_parallel_workers_per_gather', '0', true)"))


def _full_text(session: Session, dialect: str, match: str) -> ColumnElement[bool]:
    """The condition that a document matches the full-text query.

    SQLite's planner assumes an IN list is short: it looks each id up by primary key and sorts them all,
    100 ms for a word in 93% of 100k documents. With many matches the unary + hides the key from it, so
    it walks the newest-first index instead and stops after the window (40 ms); with few, the lookup is
    faster (2 ms against 40 ms for a rare word).
    """
    if dialect == "postgresql":
        return _TSV.op("@@")(_tsquery(match))
    ids = sa_select(_FTS.c.rowid).where(literal_column("incident_fts").op("MATCH")(match))
    key = literal_column("+incident_document.incident_id") if _sqlite_many(session, ids) else col(DOC.incident_id)
    return key.in_(ids)


def _tagged(session: Session, dialect: str, keys: list[str]) -> ColumnElement[bool]:
    """The condition that a document has one of the tag `keys` (not rejected).

    PostgreSQL: array overlap, which the GIN index on tags answers. SQLite has no index into the JSON
    copy: a common tag is checked on each row of the newest-first walk (13 ms), a rare one is looked up
    through incident_tag's index (9 ms, against 290 ms walking every row to find a few hundred).
    """
    if dialect == "postgresql":
        return col(DOC.tags).op("&&")(literal(keys, ARRAY(Text)))
    ids = sa_select(col(IncidentTag.incident_id)).where(col(IncidentTag.tag).in_(keys),
                                                       col(IncidentTag.confidence) != "rejected")
    if not _sqlite_many(session, ids):
        return col(DOC.incident_id).in_(ids)
    each = func.json_each(col(DOC.tags)).table_valued("value")
    return exists(sa_select(literal(1)).select_from(each).where(each.c.value.in_(keys)))


def _sqlite_many(session: Session, ids: Any) -> bool:
    """Whether `ids` has more than SQLITE_WALK_FROM rows; counting stops there (a few ms at most)."""
    first = ids.limit(SQLITE_WALK_FROM + 1).subquery()
    return int(session.execute(sa_select(func.count()).select_from(first)).scalar_one()) > SQLITE_WALK_FROM


def _tsquery(match: str) -> Any:
    return func.to_tsquery(literal_column("'english'"), match)


def _newest(session: Session, dialect: str, match: str | None, conditions: list[ColumnElement[bool]], *,
            ranked: bool) -> list[Any]:
    """The WINDOW + 1 newest matches with (incident_id, severity, status, model_id, tags, rank), newest first.

    PostgreSQL ranks in the same pass; SQLite's bm25 needs a statement of its own.
    """
    rank: ColumnElement[Any] = null()
    if ranked and dialect == "postgresql":
        assert match is not None
        # Weights: title A, body B (set in the generated column); rank by cover density.
        rank = func.ts_rank_cd(_TSV, _tsquery(match))
    statement = sa_select(col(DOC.incident_id), col(DOC.severity), col(DOC.status), col(DOC.model_id),
                          col(DOC.tags), rank.label("rank")).where(*conditions)
    return list(session.execute(statement.order_by(*NEWEST).limit(WINDOW + 1)).all())


def _bm25(session: Session, match: str, ids: list[int]) -> dict[int, float]:
    """SQLite's rank of each of `ids` (all of which match); bm25 needs the MATCH in its own statement."""
    if not ids:
        return {}
    # bm25 is lower-is-better; negate it so both engines sort by rank descending. Title counts 5x.
    # `+rowid`: FTS5 would run the MATCH once per id given a rowid constraint; a filter costs one pass.
    statement = text("SELECT rowid, -bm25(incident_fts, 5.0, 1.0) FROM incident_fts "
                     "WHERE incident_fts MATCH :m AND +rowid IN (SELECT value FROM json_each(:ids))")
    return {int(r[0]): float(r[1]) for r in session.execute(statement, {"m": match, "ids": json.dumps(ids)})}


def _conditions(session: Session, dialect: str, filters: Filters,
                index: TaxonomyIndex) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for tag in filters.tags:
        keys = sorted(index.descendants(tag))
        conditions.append(_tagged(session, dialect, keys))
    if filters.model_ids:
        conditions.append(col(DOC.model_id).in_(filters.model_ids))
    if filters.severities:
        conditions.append(col(DOC.severity).in_(filters.severities))
    if filters.statuses:
        conditions.append(col(DOC.status).in_(filters.statuses))
    if filters.opened_from:
        conditions.append(col(DOC.opened_at) >= filters.opened_from)
    if filters.opened_to:
        conditions.append(col(DOC.opened_at) < filters.opened_to)
    return conditions


def _facets(session: Session, window: list[Any]) -> dict[str, list[tuple[str, int]]]:
    """Counts per tag, severity, status and model over the window's rows (see `_newest`)."""
    from watchtower.registry.models import MonitoredModel

    model_ids = Counter(row.model_id for row in window if row.model_id is not None)
    names = dict(session.execute(sa_select(col(MonitoredModel.id), col(MonitoredModel.name))
                                 .where(col(MonitoredModel.id).in_(model_ids))).all()) if model_ids else {}
    models: Counter[str] = Counter()
    for model_id, n in model_ids.items():
        models[names.get(model_id, str(model_id))] += n
    counters = {"tag": Counter(chain.from_iterable(row.tags for row in window)),
                "severity": Counter(row.severity for row in window), "status": Counter(row.status for row in window),
                "model": models}
    # Sorted here, not in SQL, so that both engines order ties alike whatever the database's collation.
    return {name: sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])) for name, counter in counters.items()}
