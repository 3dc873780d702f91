"""Tables of the scheduled loop: who leads, which job slots ran, and each job's heartbeat."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SchedulerLease(SQLModel, table=True):
    """The leader's lease: renewed while it lives, taken over (epoch + 1) once it expires.

    Times are Unix seconds, so both databases compare them the same way.
    """

    __tablename__ = "scheduler_lease"
    name: str = Field(primary_key=True, max_length=50)
    holder: str = Field(max_length=200)
    epoch: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at: float
    renewed_at: float


class JobRun(SQLModel, table=True):
    """One run of one job in one time slot; the unique key makes a slot run once across replicas."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "slot_start"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=300)
    slot_start: int = Field(sa_column=Column(BigInteger, nullable=False))  # Unix seconds, a multiple of the interval
    epoch: int = Field(sa_column=Column(BigInteger, nullable=False))
    holder: str = Field(max_length=200)
    status: str = Field(max_length=20)  # running | ok | error
    started_at: datetime = Field(index=True)
    finished_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class JobHeartbeat(SQLModel, table=True):
    """The last start, success and error of each job: read by /readyz and the Prometheus gauges."""

    __tablename__ = "job_heartbeat"
    job: str = Field(primary_key=True, max_length=300)
    interval_s: int
    holder: str = Field(max_length=200)
    last_start_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    consecutive_failures: int = 0
