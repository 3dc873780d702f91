"""The Requiem question: what breaks most, is it ML at all, and how fast do we detect and recover?"""

from collections import Counter, defaultdict
from statistics import mean
from typing import Any

from sqlmodel import Session, select

from postmortems.lifecycle import durations
from postmortems.models import Incident, IncidentTag
from postmortems.taxonomy import TaxonomyIndex


def incident_categories(session: Session, confirmed_only: bool) -> dict[int, set[str]]:
    """Incident id -> its tag keys (confirmed only, or everything not rejected)."""
    query = select(IncidentTag.incident_id, IncidentTag.tag)
    query = query.where(IncidentTag.confidence == "confirmed") if confirmed_only else query.where(
        IncidentTag.confidence != "rejected")
    out: dict[int, set[str]] = defaultdict(set)
    for incident_id, tag in session.exec(query).all():
        out[incident_id].add(tag)
    return out


def ml_axis(tags: set[str], index: TaxonomyIndex) -> str:
    """ml if any tag (or its parent) is an ML failure, non-ml if any is not, else unknown."""
    axes = {index.nodes.get(k, {}).get("ml") for t in tags for k in [t, *index.ancestors(t)]}
    return "ml" if "ml" in axes else "non-ml" if "non-ml" in axes else "unknown"


def summarize(session: Session, index: TaxonomyIndex, confirmed_only: bool = False) -> dict[str, Any]:
    """Counts by category (each tag and its parents), per month, the ML share, and mean durations."""
    categories = incident_categories(session, confirmed_only)
    incidents = session.exec(select(Incident)).all()
    per_category: dict[str, list[Incident]] = defaultdict(list)
    months: Counter[tuple[str, str]] = Counter()
    axes: Counter[str] = Counter()
    for incident in incidents:
        assert incident.id is not None
        tags = categories.get(incident.id, set())
        keys = {k for t in tags for k in [t, *index.ancestors(t)]} or {"untagged"}
        for key in keys:
            per_category[key].append(incident)
            months[(incident.opened_at.strftime("%Y-%m"), key)] += 1
        axes[ml_axis(tags, index)] += 1

    def avg(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(mean(present), 1) if present else None

    by_category = []
    for key, members in sorted(per_category.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        spans = [durations(i) for i in members]
        by_category.append({
            "category": key, "label": index.label(key) if key != "untagged" else "Untagged",
            "parent": index.nodes.get(key, {}).get("parent"), "incidents": len(members),
            "mttd_s": avg([s.time_to_detect for s in spans]), "mtta_s": avg([s.time_to_acknowledge for s in spans]),
            "mttm_s": avg([s.time_to_mitigate for s in spans]), "mttr_s": avg([s.time_to_resolve for s in spans]),
        })
    return {
        "incidents": len(incidents),
        "confirmed_only": confirmed_only,
        "by_category": by_category,
        "over_time": [{"month": m, "category": c, "incidents": n} for (m, c), n in sorted(months.items())],
        "ml_share": {axis: axes.get(axis, 0) for axis in ("ml", "non-ml", "unknown")},
    }
