"""The bare peer of bench/serving_bench.py: FastAPI + uvicorn around one onnxruntime session, taking and
answering Watchtower's own request and response models, storing nothing.

    BENCH_ONNX=model.onnx python -m uvicorn bench.bare_serving:app --port 8001
"""

import os
import time
import uuid

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI

from watchtower.events.schemas import Prediction, PredictRequest, PredictResponse
from watchtower.serving.onnx_model import session_options

app = FastAPI()
# The options Watchtower's own sessions use (no spinning between runs): the peer differs only in what it skips.
_session = ort.InferenceSession(os.environ["BENCH_ONNX"], session_options(), providers=["CPUExecutionProvider"])
_input = _session.get_inputs()[0].name
_features = os.environ["BENCH_FEATURES"].split(",")


@app.post("/predict", response_model=PredictResponse)
def predict(body: PredictRequest) -> PredictResponse:
    """Score the rows; nothing else."""
    ids = body.ids or [uuid.uuid4().hex for _ in body.instances]
    matrix = np.array([[row[f] for f in _features] for row in body.instances], dtype=np.float32)
    started = time.perf_counter()
    labels = _session.run(None, {_input: matrix})[0].tolist()
    latency = time.perf_counter() - started
    return PredictResponse(model="bare", role="primary", version="primary-v1", latency_ms=latency * 1000,
                           predictions=[Prediction(id=i, prediction=p) for i, p in zip(ids, labels, strict=True)])
