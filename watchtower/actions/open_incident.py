"""Open an incident for the breach (or add the breach to the model+monitor's open one)."""

from typing import Any

from sqlmodel import Session

from detectors.base import Finding
from detectors.evidently_compat import DATASET
from postmortems.models import Severity
from postmortems.service import mark_mitigated, open_or_append
from postmortems.similar import link_similar
from postmortems.taxonomy import KPI_DETECTORS, suggest
from watchtower.actions.base import ActionContext
from watchtower.policy import Breach, is_feature_drift
from watchtower.registry.models import MonitoredModel, Pipeline

MITIGATIONS = ("pause_pipeline", "swap_model")


def severity_of(breach: Breach, failed_actions: list[str]) -> tuple[str, str]:
    """(severity, the rule that set it): a KPI drop is worse than drift; a failed mitigation is worse still."""
    kpi = any(o.detector in KPI_DETECTORS for o in breach.breached)
    level, rule = (2, "model KPI below threshold") if kpi else (3, "input or prediction drift, KPIs not breached")
    if failed_actions:
        level, rule = level - 1, f"{rule}; mitigation failed ({', '.join(failed_actions)})"
    return Severity(f"SEV{level}").value, rule


def evidence_of(breach: Breach) -> dict[str, Any]:
    """The numbers behind the breach, stored on the incident and shown on its page."""
    return {
        "model": breach.model_name,
        "monitor": breach.monitor_name,
        "window": {"start": breach.window_start.isoformat(), "end": breach.window_end.isoformat()},
        "checks": [
            {"check_run_id": o.check_run_id, "detector": o.detector, "status": o.status,
             "findings": [_finding(f) for f in o.findings if f.breached]}
            for o in breach.outcomes
        ],
    }


def describe(breach: Breach) -> str:
    """One sentence of what breached, with the numbers."""
    parts = []
    for f in sorted(breach.breached_findings, key=lambda f: f.score)[:8]:
        if f.p_value is not None:
            parts.append(f"{f.feature} ({f.detector}/{f.test} p={f.p_value:.2g} < {f.threshold:g})")
        else:
            side = "<" if f.direction == "below" else ">"
            parts.append(f"{f.feature} ({f.test}={f.score:.3f} {side} {f.threshold:.3f})")
    more = len(breach.breached_findings) - len(parts)
    return "Breached: " + ", ".join(parts) + (f" and {more} more" if more > 0 else "")


class OpenIncident:
    """At most one active incident per model+monitor; repeated breaches extend its timeline."""

    name = "open_incident"

    def execute(self, ctx: ActionContext, session: Session) -> str:
        breach = ctx.breach
        severity, rule = severity_of(breach, ctx.failed)
        evidence = evidence_of(breach)
        features = len({f.feature for o in breach.outcomes if is_feature_drift(o.detector)
                        for f in o.findings if f.feature != DATASET}) or 1
        tags = suggest([o.detector for o in breach.breached], len(set(breach.drifted_features)) / features)
        kinds = sorted({o.detector for o in breach.breached})
        model = session.get(MonitoredModel, breach.model_id)
        assert model is not None
        pipeline = session.get(Pipeline, model.pipeline_id)
        incident, created = open_or_append(
            session, model_id=breach.model_id, monitor_id=breach.monitor_id, model_name=breach.model_name,
            pipeline=pipeline.name if pipeline else "", severity_rule=rule,
            title=f"{breach.model_name}: {', '.join(kinds)} breached ({breach.monitor_name} monitor)",
            summary=describe(breach), severity=severity, evidence=evidence, tags=[t.value for t in tags],
            window_start=breach.window_start, at=breach.window_end)
        if any(r.ok and r.action in MITIGATIONS for r in ctx.runs):
            mark_mitigated(session, incident, breach.window_end)
        ctx.incident_id, ctx.incident_created = incident.id, created
        if created:
            link_similar(session, incident)
        return f"opened incident #{incident.id} ({severity})" if created else f"added breach to incident #{incident.id}"


def _finding(f: Finding) -> dict[str, Any]:
    return {"feature": f.feature, "test": f.test, "engine": f.engine, "score": f.score, "statistic": f.statistic,
            "p_value": f.p_value, "threshold": f.threshold, "direction": f.direction, **f.extra}
