"""Request and response bodies of the event, label and predict endpoints."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 10_000


class EventIn(BaseModel):
    """One prediction made elsewhere, reported to Watchtower."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200, description="Prediction id; resending it is harmless")
    ts: datetime | None = Field(default=None, description="When it was served (UTC if naive); default now")
    features: dict[str, Any]
    prediction: Any = None
    latency_ms: float | None = Field(default=None, ge=0)
    version: str | None = Field(default=None, max_length=100)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class LabelIn(BaseModel):
    """Ground truth for one prediction id."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    label: Any = Field(description="The true class or value")


class LabelBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(BaseModel):
    """What a 2xx ingest committed: new rows and ignored resends."""

    accepted: int
    duplicates: int


class PredictRequest(BaseModel):
    """Rows to score with the model's active ONNX graph."""

    model_config = ConfigDict(extra="forbid")
    instances: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)
    ids: list[str] | None = Field(default=None, description="Prediction ids; generated when absent")


class Prediction(BaseModel):
    id: str
    prediction: Any


class PredictResponse(BaseModel):
    model: str
    role: str
    version: str
    latency_ms: float
    predictions: list[Prediction]
