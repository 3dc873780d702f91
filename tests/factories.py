"""Real rows and real models for tests: synthetic data, scikit-learn -> ONNX, registration through the API."""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.outbox import OutboxMessage
from watchtower.modelkit import named_classifier, tensor_classifier

NUMERIC = ["f1", "f2", "f3", "f4"]
MIXED_NUMERIC = ["f1", "f2"]
CATEGORICAL = ["color"]


def make_frame(n: int, seed: int = 0, shift: float = 0.0, colors: tuple[float, float, float] = (0.5, 0.3, 0.2)
               ) -> pd.DataFrame:
    """Numeric f1..f4, categorical color, and a label that depends on f1, f2 and color."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.normal(0.0, 1.0, n) for f in NUMERIC})
    frame["f1"] += shift
    frame["f2"] += shift
    frame["color"] = rng.choice(["red", "green", "blue"], size=n, p=list(colors))
    frame["label"] = ((frame["f1"] + frame["f2"] + (frame["color"] == "red") * 0.5) > 0.25).astype(int)
    return frame


@dataclass(frozen=True)
class BuiltModels:
    reference: pd.DataFrame
    tensor_primary: bytes
    tensor_fallback: bytes
    named_primary: bytes
    named_fallback: bytes
    regressor: bytes


def build_models() -> BuiltModels:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    reference = make_frame(1500, seed=1)
    x, y = reference[NUMERIC], reference["label"]
    mixed = reference[MIXED_NUMERIC + CATEGORICAL]
    regression = LinearRegression().fit(x.to_numpy(np.float32), reference["f3"] * 2)
    regressor = convert_sklearn(regression, initial_types=[("input", FloatTensorType([None, 4]))], target_opset=17)
    return BuiltModels(
        reference=reference,
        tensor_primary=tensor_classifier(x, y).onnx,
        tensor_fallback=tensor_classifier(x, y, simple=True).onnx,
        named_primary=named_classifier(mixed, y, MIXED_NUMERIC, CATEGORICAL).onnx,
        named_fallback=named_classifier(mixed, y, MIXED_NUMERIC, CATEGORICAL, simple=True).onnx,
        regressor=regressor.SerializeToString(),
    )


def tensor_spec(name: str = "churn", **extra: Any) -> dict[str, Any]:
    return {"name": name, "task": "classification", "target": "label",
            "features": [{"name": f, "type": "numeric"} for f in NUMERIC], **extra}


def named_spec(name: str = "mixed", **extra: Any) -> dict[str, Any]:
    return {"name": name, "task": "classification", "target": "label",
            "features": [{"name": f, "type": "numeric"} for f in MIXED_NUMERIC]
            + [{"name": c, "type": "categorical"} for c in CATEGORICAL], **extra}


def register(client: TestClient, spec: dict[str, Any], primary: bytes, fallback: bytes,
             reference: pd.DataFrame, fmt: str = "csv") -> Any:
    """POST /models with real files; returns the response (callers assert on it)."""
    if fmt == "parquet":
        import io

        buffer = io.BytesIO()
        reference.to_parquet(buffer, index=False)
        ref = ("reference.parquet", buffer.getvalue())
    else:
        ref = ("reference.csv", reference.to_csv(index=False).encode())
    return client.post("/models", data={"spec": json.dumps(spec)}, files={
        "primary": ("primary.onnx", primary), "fallback": ("fallback.onnx", fallback), "reference": ref})


def register_tensor(client: TestClient, models: BuiltModels, name: str = "churn", **extra: Any) -> dict[str, Any]:
    response = register(client, tensor_spec(name, **extra), models.tensor_primary, models.tensor_fallback,
                        models.reference)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def serve(client: TestClient, name: str, frame: pd.DataFrame, columns: list[str] | None = None,
          labels: bool = False) -> list[dict[str, Any]]:
    """Predict every row through the API (batches of 200); optionally send the true labels."""
    columns = columns or NUMERIC
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(frame), 200):
        chunk = frame.iloc[start:start + 200]
        response = client.post(f"/models/{name}/predict", json={"instances": chunk[columns].to_dict("records")})
        assert response.status_code == 200, response.text
        batch = response.json()["predictions"]
        predictions += batch
        if labels:
            sent = client.post(f"/models/{name}/labels", json={"labels": [
                {"id": p["id"], "label": int(y)} for p, y in zip(batch, chunk["label"], strict=True)]})
            assert sent.status_code == 200, sent.text
    return predictions


def queued_pages(engine: Engine) -> list[int | None]:
    """The incidents paged so far, in order: each incident's own Slack message in the outbox, not its later
    edits or thread replies (payloads that name a `method`)."""
    with Session(engine) as session:
        return [m.incident_id for m in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
                if m.kind == "slack" and "incident_message" in m.payload and "method" not in m.payload]
