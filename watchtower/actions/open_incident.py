"""Open an incident for the breach, or merge the breach into its group's open one (by default: the model's)."""

from typing import Any

from sqlmodel import Session

from detectors.base import Finding
from postmortems.diagnosis import reevaluate
from postmortems.diagnosis.evidence import Evidence
from postmortems.diagnosis.guards import record_catches
from postmortems.diagnosis.suggest import diagnose_incident
from postmortems.documents import refresh_document
from postmortems.models import Incident, Severity
from postmortems.service import find_open, mark_mitigated, merge_evidence, open_or_append
from postmortems.similar import link_similar
from watchtower.actions.base import ActionContext
from watchtower.policy.breach import Breach
from watchtower.registry.models import MonitoredModel, Pipeline

MITIGATIONS = ("pause_pipeline", "swap_model")


def severity_of(breach: Breach, failed_actions: list[str]) -> tuple[str, str]:
    """(severity, why): the fired rule's severity; a failed mitigation makes it one level worse."""
    plan = breach.plan
    hit = plan.rule_for("open_incident") if plan else None
    level = int((plan.severity if plan and plan.severity else Severity.sev3.value)[-1])
    rule = f"rule '{hit.rule.name}': {hit.why()}" if hit else "no policy rule (opened directly)"
    if failed_actions:
        level, rule = max(level - 1, 1), f"{rule}; mitigation failed ({', '.join(failed_actions)})"
    return Severity(f"SEV{level}").value, rule[:500]


def evidence_of(breach: Breach) -> dict[str, Any]:
    """The numbers behind the breach, stored on the incident and shown on its page."""
    evidence: dict[str, Any] = {
        "model": breach.model_name,
        "monitor": breach.monitor_name,
        "window": {"start": breach.window_start.isoformat(), "end": breach.window_end.isoformat(),
                   "first_event_at": breach.first_event_at.isoformat() if breach.first_event_at else None},
        "checks": [
            {"check_run_id": o.check_run_id, "monitor": breach.monitor_name, "detector": o.detector,
             "status": o.status, "findings": [_finding(f) for f in o.findings if f.breached]}
            for o in breach.outcomes
        ],
    }
    if breach.diagnosis:
        evidence["diagnosis"] = breach.diagnosis
    if breach.plan is not None:
        evidence["policy"] = {"fired": [h.rule.name for h in breach.plan.fired],
                              "explanation": breach.plan.explain()}
    return evidence


def describe(findings: list[dict[str, Any]]) -> str:
    """One sentence of what breached, with the numbers (from evidence findings)."""
    parts = []
    for f in sorted(findings, key=lambda f: f["score"])[:8]:
        if f.get("p_value") is not None:
            parts.append(f"{f['feature']} ({f['detector']}/{f['test']} p={f['p_value']:.2g} < {f['threshold']:g})")
        else:
            side = "<" if f.get("direction") == "below" else ">"
            parts.append(f"{f['feature']} ({f['detector']} {f['test']}={f['score']:.3f} {side} {f['threshold']:.3f})")
    more = len(findings) - len(parts)
    return "Breached: " + ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def find_group_incident(session: Session, key: str) -> Incident | None:
    """The active incident of a grouping key."""
    return find_open(session, key) if key else None


class OpenIncident:
    """At most one active incident per grouping key; every later breach merges into it."""

    name = "open_incident"

    def execute(self, ctx: ActionContext, session: Session) -> str:
        breach = ctx.breach
        severity, rule = severity_of(breach, ctx.failed)
        existing = find_group_incident(session, breach.group_key)
        evidence = evidence_of(breach)
        merged = evidence if existing is None else merge_evidence(existing.evidence, evidence)
        breached = [o for o in merged["checks"] if o["status"] == "breached"]
        findings = [f | {"detector": c["detector"]} for c in breached for f in c["findings"]]
        model = session.get(MonitoredModel, breach.model_id)
        assert model is not None
        kinds = sorted({c["detector"] for c in breached})
        monitors = sorted({c["monitor"] for c in breached})
        pipeline = session.get(Pipeline, model.pipeline_id)
        incident, created = open_or_append(
            session, key=breach.group_key, model_id=breach.model_id, monitor_id=breach.monitor_id,
            model_name=breach.model_name, pipeline=pipeline.name if pipeline else "", severity_rule=rule,
            title=f"{breach.model_name}: {', '.join(kinds)} breached ({', '.join(monitors)} "
                  f"monitor{'s' if len(monitors) > 1 else ''})",
            summary=describe(findings), severity=severity, evidence=evidence,
            impact_started_at=breach.first_event_at or breach.window_start, at=breach.window_end)
        suggestions = diagnose_incident(session, incident, Evidence.of(merged))
        reevaluate.apply(session, incident, suggestions, breach.window_end, created)
        refresh_document(session, incident)
        if any(r.ok and r.action in MITIGATIONS for r in ctx.runs):
            mark_mitigated(session, incident, breach.window_end)
        ctx.incident_id, ctx.incident_created = incident.id, created
        if created:
            link_similar(session, incident)
        record_catches(session, incident, evidence)  # a breach a postmortem's guard caught links back to it
        return f"opened incident #{incident.id} ({severity})" if created else f"added breach to incident #{incident.id}"


def _finding(f: Finding) -> dict[str, Any]:
    # A finding computed on merged profiles says so (mode "sketch k=...", its note); an exact one stays as before.
    sketched = {"mode": f.mode, "note": f.note} if f.mode != "exact" else {}
    return {"feature": f.feature, "test": f.test, "engine": f.engine, "score": f.score, "statistic": f.statistic,
            "p_value": f.p_value, "threshold": f.threshold, "direction": f.direction, **f.extra, **sketched}
