"""Ranked full-text search over incidents with facets: FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL.

Queries are parsed once into words, "quoted phrases" and -exclusions, then written in each engine's
syntax. Both stem English (Porter / Snowball) and both ignore English stop words, so the same query
finds the same incidents on either database.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from markupsafe import Markup, escape
from sqlalchemy import Float, Integer, cast, func, null, text
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from postmortems.models import Incident, IncidentTag
from postmortems.taxonomy import TaxonomyIndex

STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can did do does doing don down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own s same she should so some such t than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with you your yours yourself yourselves""".split())
_TOKEN = re.compile(r"-?\"[^\"]*\"|\S+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
START, STOP = "\x02", "\x03"
# Bounds that keep a query's cost independent of how many incidents it matches.
COUNT_CAP, RANK_WINDOW, FACET_WINDOW = 10_000, 1_000, 10_000


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
    positive = [c for c in clauses if not c.negated]
    if not positive:
        return None
    match = " AND ".join(f'"{" ".join(c.words)}"' for c in positive)
    return match + "".join(f' NOT "{" ".join(c.words)}"' for c in clauses if c.negated)


def tsquery(clauses: list[Clause], any_term: bool = False) -> str | None:
    """PostgreSQL tsquery text; `any_term` ORs the positive terms (for highlighting in a body that may
    hold only some of them, as when a word matched the title)."""
    positive = [c for c in clauses if not c.negated]
    if not positive:
        return None

    def term(c: Clause) -> str:
        return "(" + " <-> ".join(f"'{w}'" for w in c.words) + ")"

    if any_term:
        return " | ".join(term(c) for c in positive)
    return " & ".join([term(c) for c in positive] + [f"!{term(c)}" for c in clauses if c.negated])


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
    snippet: Markup


@dataclass
class Results:
    hits: list[Hit]
    total: int
    facets: dict[str, list[tuple[str, int]]]
    capped: bool = False  # more than COUNT_CAP matched: `total` is a lower bound


def search(session: Session, q: str, filters: Filters, index: TaxonomyIndex, *,
           sort: Literal["relevance", "date"] = "relevance", limit: int = 20, offset: int = 0,
           with_facets: bool = True) -> Results:
    """One page of matching incidents, the total (exact up to COUNT_CAP), and facet counts.

    Bounded work, whatever the query: counting stops at COUNT_CAP, relevance ranks the RANK_WINDOW
    newest matches when there are more, and facets count the FACET_WINDOW newest matches.
    """
    clauses = parse(q)
    dialect = session.get_bind().dialect.name
    match = tsquery(clauses) if dialect == "postgresql" else fts5_query(clauses)
    conditions = _conditions(filters, index)
    # The matching ids, unranked: counting and faceting must not pay for ranking every match.
    matched: Any = sa_select(col(Incident.id)).where(*conditions)
    if match is not None:
        matched = matched.where(col(Incident.id).in_(_matching(dialect).bindparams(m=match)))
    newest = (col(Incident.opened_at).desc(), col(Incident.id).desc())
    total = session.execute(sa_select(func.count()).select_from(matched.limit(COUNT_CAP + 1).subquery())).scalar_one()
    if match is not None and sort == "relevance":
        ranked = _ranked(dialect).bindparams(m=match).columns(incident_id=Integer, rank=Float).subquery()
        page = (sa_select(ranked.c.incident_id, ranked.c.rank).join(Incident, Incident.id == ranked.c.incident_id)
                .where(*conditions)  # filters only: the full-text match is already the ranked query's own
                .order_by(ranked.c.rank.desc(), *newest))
        if total > RANK_WINDOW:
            window = matched.order_by(*newest).limit(RANK_WINDOW).subquery("window")
            page = page.join(window, window.c.id == ranked.c.incident_id)
    else:
        page = matched.add_columns(cast(null(), Float)).order_by(*newest)
    rows = session.execute(page.limit(limit).offset(offset)).all()
    ids: list[int] = [row[0] for row in rows]
    scores = {row[0]: float(row[1]) for row in rows if row[1] is not None}
    incidents = {i.id: i for i in session.exec(select(Incident).where(col(Incident.id).in_(ids))).all()}
    highlight = tsquery(clauses, any_term=True) if dialect == "postgresql" else match
    snippets = _snippets(session, dialect, highlight, ids) if highlight is not None else {}
    hits = [Hit(incidents[i], scores.get(i), snippets.get(i) or Markup(escape(incidents[i].summary[:240])))
            for i in ids]
    facets = _facets(session, matched.order_by(*newest).limit(FACET_WINDOW)) if with_facets else {}
    return Results(hits, min(int(total), COUNT_CAP), facets, capped=total > COUNT_CAP)


def _ranked(dialect: str) -> Any:
    if dialect == "postgresql":
        # Weights: title A, body B (set in the generated column); rank by cover density.
        return text("SELECT incident_id, ts_rank_cd(tsv, to_tsquery('english', :m)) AS rank "
                    "FROM incident_document WHERE tsv @@ to_tsquery('english', :m)")
    # bm25 is lower-is-better; negate it so both engines sort by rank descending. Title counts 5x.
    return text("SELECT rowid AS incident_id, -bm25(incident_fts, 5.0, 1.0) AS rank "
                "FROM incident_fts WHERE incident_fts MATCH :m")


def _matching(dialect: str) -> Any:
    if dialect == "postgresql":
        return text("SELECT incident_id FROM incident_document WHERE tsv @@ to_tsquery('english', :m)")
    return text("SELECT rowid FROM incident_fts WHERE incident_fts MATCH :m")


def _conditions(filters: Filters, index: TaxonomyIndex) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for tag in filters.tags:
        keys = sorted(index.descendants(tag))
        conditions.append(col(Incident.id).in_(select(IncidentTag.incident_id).where(
            col(IncidentTag.tag).in_(keys), IncidentTag.confidence != "rejected")))
    if filters.model_ids:
        conditions.append(col(Incident.model_id).in_(filters.model_ids))
    if filters.severities:
        conditions.append(col(Incident.severity).in_(filters.severities))
    if filters.statuses:
        conditions.append(col(Incident.status).in_(filters.statuses))
    if filters.opened_from:
        conditions.append(col(Incident.opened_at) >= filters.opened_from)
    if filters.opened_to:
        conditions.append(col(Incident.opened_at) < filters.opened_to)
    return conditions


def _snippets(session: Session, dialect: str, match: str, ids: list[int]) -> dict[int, Markup]:
    if not ids:
        return {}
    if dialect == "postgresql":
        statement = text(f"SELECT incident_id, ts_headline('english', body, to_tsquery('english', :m), "
                         f"'StartSel={START}, StopSel={STOP}, MaxWords=30, MinWords=10, MaxFragments=2') "
                         "FROM incident_document WHERE incident_id IN :ids")
    else:
        statement = text(f"SELECT rowid, snippet(incident_fts, 1, '{START}', '{STOP}', '…', 20) "
                         "FROM incident_fts WHERE incident_fts MATCH :m AND rowid IN :ids")
    from sqlalchemy import bindparam

    rows = session.execute(statement.bindparams(bindparam("ids", expanding=True)), {"m": match, "ids": ids}).all()
    # Escape everything people wrote, then turn the engine's markers into <mark>.
    return {r[0]: Markup(str(escape(r[1])).replace(START, "<mark>").replace(STOP, "</mark>")) for r in rows}


def _facets(session: Session, matched: Any) -> dict[str, list[tuple[str, int]]]:
    from watchtower.registry.models import MonitoredModel

    # A JOIN on the (limited) id set, not IN: PostgreSQL would re-run a LIMIT subquery under a semi-join.
    ids = matched.subquery("matched")
    tags = session.execute(
        sa_select(col(IncidentTag.tag), func.count()).select_from(ids)
        .join(IncidentTag, col(IncidentTag.incident_id) == ids.c.id).where(col(IncidentTag.confidence) != "rejected")
        .group_by(col(IncidentTag.tag)).order_by(func.count().desc(), col(IncidentTag.tag))).all()
    # One grouped pass for the three columns of `incident`.
    columns = (col(Incident.severity), col(Incident.status), col(Incident.model_id))
    grouped = session.execute(sa_select(*columns, func.count()).select_from(ids)
                              .join(Incident, col(Incident.id) == ids.c.id).group_by(*columns)).all()
    names = dict(session.execute(sa_select(col(MonitoredModel.id), col(MonitoredModel.name))).all())
    facets: dict[str, Counter[str]] = {"severity": Counter(), "status": Counter(), "model": Counter()}
    for severity, status, model_id, n in grouped:
        facets["severity"][severity] += n
        facets["status"][status] += n
        if model_id is not None:
            facets["model"][names.get(model_id, str(model_id))] += n
    return {"tag": [(str(tag), int(n)) for tag, n in tags]} | {
        name: sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])) for name, counter in facets.items()}
