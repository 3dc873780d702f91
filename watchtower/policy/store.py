"""Policies and decisions in the database: which policy applies to a model, and what earlier passes matched."""

from typing import Literal

from sqlmodel import Session, col, select

from watchtower.clock import utcnow
from watchtower.policy.models import PolicyDecision, ResponsePolicy
from watchtower.policy.rules import DEFAULT_POLICY, Policy

Scope = Literal["builtin", "default", "model"]


def applicable(session: Session, model_id: int | None) -> tuple[ResponsePolicy | None, Scope]:
    """The stored policy row that applies to a model (model_id None: to models without their own) and its scope;
    (None, "builtin") when only the built-in default applies."""
    own = [] if model_id is None else [model_id]
    rows = {row.model_id: row for row in session.exec(select(ResponsePolicy).where(
        col(ResponsePolicy.model_id).is_(None) | col(ResponsePolicy.model_id).in_(own)))}
    if model_id is not None and model_id in rows:
        return rows[model_id], "model"
    return (rows[None], "default") if None in rows else (None, "builtin")


def effective_policy(session: Session, model_id: int) -> tuple[Policy, Scope]:
    """The model's own policy, else the stored default, else the built-in default."""
    row, scope = applicable(session, model_id)
    return (Policy.model_validate(row.body) if row else DEFAULT_POLICY), scope


def default_policy(session: Session) -> tuple[Policy, Scope]:
    """The policy of models without their own."""
    row, scope = applicable(session, None)
    return (Policy.model_validate(row.body) if row else DEFAULT_POLICY), scope


def _own(session: Session, model_id: int | None) -> ResponsePolicy | None:
    """The row stored for exactly this model (None: the stored default)."""
    return session.exec(select(ResponsePolicy).where(
        col(ResponsePolicy.model_id).is_(None) if model_id is None else ResponsePolicy.model_id == model_id)).first()


def put_policy(session: Session, model_id: int | None, policy: Policy, author: str) -> None:
    """Store a model's policy (or the default, with model_id None), replacing any before it."""
    row = _own(session, model_id) or ResponsePolicy(model_id=model_id, body={}, updated_by=author)
    row.body, row.updated_by, row.updated_at = policy.model_dump(mode="json"), author, utcnow()
    session.add(row)
    session.flush()


def delete_policy(session: Session, model_id: int) -> bool:
    """Drop a model's own policy, so the default applies again; False if it had none."""
    row = _own(session, model_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def history(session: Session, monitor_id: int, limit: int) -> list[frozenset[str]]:
    """Rule names matched by the monitor's last `limit` passes with a verdict, newest first."""
    rows = session.exec(select(PolicyDecision.matched).where(PolicyDecision.monitor_id == monitor_id,
                                                             col(PolicyDecision.verdict))
                        .order_by(col(PolicyDecision.at).desc(), col(PolicyDecision.id).desc()).limit(limit)).all()
    return [frozenset(matched) for matched in rows]


def healthy_streak(session: Session, model_id: int, monitor_id: int | None, limit: int) -> int:
    """How many of the newest passes with a verdict (of the model, or of one monitor) matched no rule."""
    query = select(PolicyDecision.matched).where(PolicyDecision.model_id == model_id, col(PolicyDecision.verdict))
    if monitor_id is not None:
        query = query.where(PolicyDecision.monitor_id == monitor_id)
    streak = 0
    for matched in session.exec(query.order_by(col(PolicyDecision.at).desc(), col(PolicyDecision.id).desc())
                                .limit(limit)).all():
        if matched:
            break
        streak += 1
    return streak
