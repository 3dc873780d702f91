"""Request and response bodies of the event, label and predict endpoints."""

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchtower.limits import FiniteFloat, JsonValue, SafeStr, ShortText, UtcDatetime

MAX_BATCH = 10_000
STAGE_PATTERN = r"^[A-Za-z0-9_.-]+$"


class EventIn(BaseModel):
    """One prediction made elsewhere, reported to Watchtower."""

    model_config = ConfigDict(extra="forbid")
    id: SafeStr = Field(min_length=1, max_length=200, description="Prediction id; resending it is harmless")
    ts: UtcDatetime | None = Field(default=None, description="When it was served (UTC if naive); default now")
    features: dict[str, Any]
    prediction: JsonValue = None
    scores: dict[ShortText, float] | None = Field(default=None, description="Class -> probability, for classifiers")
    latency_ms: FiniteFloat | None = Field(default=None, ge=0)
    error: SafeStr | None = Field(default=None, max_length=2000, description="Why the prediction failed, if it did")
    version: SafeStr | None = Field(default=None, max_length=100)

    @field_validator("scores")
    @classmethod
    def _probabilities(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and not all(math.isfinite(p) and 0 <= p <= 1 for p in value.values()):
            raise ValueError("every score must be a probability in [0, 1]")
        return value


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class LabelIn(BaseModel):
    """Ground truth for one prediction id."""

    model_config = ConfigDict(extra="forbid")
    id: SafeStr = Field(min_length=1, max_length=200)
    label: JsonValue = Field(description="The true class or value")


class LabelBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_BATCH)


class FeatureLogRow(BaseModel):
    """One entity's features as a pipeline stage produced them."""

    model_config = ConfigDict(extra="forbid")
    id: SafeStr = Field(min_length=1, max_length=200, description="Entity id: the prediction id serving will use")
    features: dict[str, Any]


class FeatureLogBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[FeatureLogRow] = Field(min_length=1, max_length=MAX_BATCH)


class MetricIn(BaseModel):
    """One value of a business KPI."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    value: FiniteFloat
    ts: UtcDatetime | None = Field(default=None, description="When it was measured (UTC if naive); default now")


class MetricBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[MetricIn] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(BaseModel):
    """What a 2xx ingest committed: new rows and ignored resends."""

    accepted: int
    duplicates: int


class LabelResult(IngestResult):
    """A label ingest: `unserved` counts labels kept for ids no event has yet (only with allow_unserved)."""

    unserved: int = 0


class PredictRequest(BaseModel):
    """Rows to score with the model's active ONNX graph."""

    model_config = ConfigDict(extra="forbid")
    instances: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)
    ids: list[Annotated[SafeStr, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=MAX_BATCH, description="Prediction ids; generated when absent")


class Prediction(BaseModel):
    id: str
    prediction: Any


class PredictResponse(BaseModel):
    model: str
    role: str
    version: str
    latency_ms: float
    predictions: list[Prediction]
