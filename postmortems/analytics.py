"""The Requiem question: what breaks most, is it ML at all, and how fast do we detect and recover?

The database groups incidents by (tag set, month) and sums their stage durations, so the work in Python
is per group, not per incident: this summary also feeds the /metrics gauges on every scrape.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Float, case, cast, func, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from postmortems.models import Incident, IncidentTag
from postmortems.taxonomy import TaxonomyIndex

# Summary field -> (stage start, stage end): the aggregate form of lifecycle.durations.
STAGES = {"mttd_s": (Incident.impact_started_at, Incident.opened_at),
          "mtta_s": (Incident.opened_at, Incident.acknowledged_at),
          "mttm_s": (Incident.opened_at, Incident.mitigated_at),
          "mttr_s": (Incident.opened_at, Incident.resolved_at)}


def ml_axis(keys: frozenset[str], index: TaxonomyIndex) -> str:
    """ml if any category (a tag or one of its parents) is an ML failure, non-ml if any is not, else unknown."""
    axes = {index.nodes.get(k, {}).get("ml") for k in keys}
    return "ml" if "ml" in axes else "non-ml" if "non-ml" in axes else "unknown"


@dataclass
class _Category:
    """Running count and per-stage sums of one category's incidents."""

    incidents: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))

    def mean(self, stage: str) -> float | None:
        return round(self.sums[stage] / self.counts[stage], 1) if self.counts[stage] else None


def summarize(session: Session, index: TaxonomyIndex, confirmed_only: bool = False) -> dict[str, Any]:
    """Counts by category (each tag and its parents), per month, the ML share, and mean durations."""
    per_category: dict[str, _Category] = defaultdict(_Category)
    months: Counter[tuple[str, str]] = Counter()
    axes: Counter[str] = Counter()
    total = 0

    @cache  # a few hundred tag sets recur across the months
    def keys_and_axis(tags: frozenset[str]) -> tuple[frozenset[str], str]:
        keys = frozenset(k for t in tags for k in [t, *index.ancestors(t)]) or frozenset({"untagged"})
        return keys, ml_axis(keys, index)  # "untagged" is no taxonomy node: unknown

    for group in _groups(session, confirmed_only):
        keys, axis = keys_and_axis(frozenset((group.tags or "").split()))
        for key in keys:
            category = per_category[key]
            category.incidents += group.n
            for name in STAGES:
                category.sums[name] += float(getattr(group, f"{name}_sum") or 0.0)
                category.counts[name] += getattr(group, f"{name}_n")
            months[(group.month, key)] += group.n
        axes[axis] += group.n
        total += group.n
    by_category = [
        {"category": key, "label": index.label(key) if key != "untagged" else "Untagged",
         "parent": index.nodes.get(key, {}).get("parent"), "incidents": category.incidents,
         **{name: category.mean(name) for name in STAGES}}
        for key, category in sorted(per_category.items(), key=lambda kv: (-kv[1].incidents, kv[0]))]
    return {
        "incidents": total,
        "confirmed_only": confirmed_only,
        "by_category": by_category,
        "over_time": [{"month": m, "category": c, "incidents": n} for (m, c), n in sorted(months.items())],
        "ml_share": {axis: axes.get(axis, 0) for axis in ("ml", "non-ml", "unknown")},
    }


def _groups(session: Session, confirmed_only: bool) -> list[Any]:
    """One row per (tag set, month opened): the tags space-separated (NULL: untagged), the number of
    incidents, and per stage the sum of its durations and how many incidents have one."""
    dialect = session.get_bind().dialect.name
    kept = col(IncidentTag.confidence) == "confirmed" if confirmed_only else col(IncidentTag.confidence) != "rejected"
    tag_sets = (sa_select(col(IncidentTag.incident_id).label("incident_id"),
                          func.aggregate_strings(col(IncidentTag.tag), " ").label("tags"))
                .where(kept).group_by(col(IncidentTag.incident_id)).subquery("tag_sets"))
    month = _month(dialect, col(Incident.opened_at)).label("month")
    stages: list[Any] = []
    for name, (start, end) in STAGES.items():
        seconds = _seconds(dialect, col(start), col(end))
        stages += [func.sum(seconds).label(f"{name}_sum"), func.count(seconds).label(f"{name}_n")]
    statement = (sa_select(tag_sets.c.tags, month, func.count().label("n"), *stages)
                 .select_from(Incident).outerjoin(tag_sets, tag_sets.c.incident_id == col(Incident.id))
                 .group_by(tag_sets.c.tags, month))
    return list(session.execute(statement).all())


def _month(dialect: str, at: Any) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", at), "YYYY-MM")
    return func.strftime("%Y-%m", at)  # SQLite stores UTC text


def _seconds(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """end - start in seconds, at least 0 (NULL if either is missing), as lifecycle.durations counts them."""
    if dialect == "postgresql":
        span: ColumnElement[Any] = cast(func.extract("epoch", end - start), Float)
    else:
        span = (func.julianday(end) - func.julianday(start)) * literal_column("86400.0")
    return case((span < 0, 0.0), else_=span)  # not GREATEST: PostgreSQL's ignores a NULL
