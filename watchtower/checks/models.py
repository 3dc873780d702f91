"""Stored outcome of every detector run: one CheckRun, one CheckResult per feature/metric."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class CheckRun(SQLModel, table=True):
    """One detector over one window of one model's monitor."""

    __tablename__ = "check_run"
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id", index=True)
    monitor_id: int = Field(foreign_key="monitor.id", index=True)
    detector: str = Field(max_length=100)
    engine: str = Field(max_length=50)
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=30)  # ok | breached | insufficient_data | error
    window_start: datetime
    window_end: datetime
    n_reference: int
    n_current: int
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    # What the response policy made of the pass this run belongs to (rules fired, actions done or dry-run).
    decision_id: int | None = Field(default=None, foreign_key="policy_decision.id", index=True)
    # Set when the detector is a postmortem's guard: the action item that added it (postmortems/diagnosis/guards.py).
    # No foreign key: a monitor PUT may carry a stale link, and a check run must never fail on it.
    guard_item_id: int | None = Field(default=None, index=True)


class CheckResult(SQLModel, table=True):
    """One statistic of one feature (or the prediction, or a KPI) with its threshold and verdict."""

    __tablename__ = "check_result"
    id: int | None = Field(default=None, primary_key=True)
    check_run_id: int = Field(foreign_key="check_run.id", index=True)
    feature: str = Field(max_length=200)
    test: str = Field(max_length=50)
    statistic: float | None = None
    p_value: float | None = None
    score: float
    threshold: float
    direction: str = Field(max_length=10)  # "below" or "above": which side of the threshold breaches
    breached: bool
    # "static", or how a learned threshold was fitted ("quantile 0.99 of 48 healthy scores").
    threshold_source: str = Field(default="static", max_length=300)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # "exact" (on the rows) or "sketch k=<k>" (on merged profiles; extra["error_bound"] bounds the statistic's
    # error), and what a reader must know about it ("near threshold", a test replaced beyond the category cap).
    mode: str = Field(default="exact", max_length=40)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))


class FittedThreshold(SQLModel, table=True):
    """A threshold learned from a monitor's own healthy history or reference chunks, re-fitted on a schedule."""

    __tablename__ = "fitted_threshold"
    __table_args__ = (UniqueConstraint("monitor_id", "detector", "test", "feature"),)
    id: int | None = Field(default=None, primary_key=True)
    monitor_id: int = Field(foreign_key="monitor.id")
    detector: str = Field(max_length=100)
    test: str = Field(max_length=50)
    feature: str = Field(max_length=200)
    value: float | None = None  # None: too few healthy scores yet, the detector's own threshold stands
    source: str = Field(max_length=300)
    n: int
    direction: str = Field(max_length=10)
    fitted_at: datetime = Field(default_factory=utcnow)
