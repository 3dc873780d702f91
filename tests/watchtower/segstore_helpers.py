"""Helpers of the segment store tests: a moto S3 server, store binding, a bare model row and event frames."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session

from detectors.base import ERROR, ID, LATENCY, PREDICTION, TS
from tests.conftest import free_port
from watchtower.db import writer
from watchtower.events.segstore import binding
from watchtower.registry.models import MonitoredModel, Pipeline
from watchtower.settings import Settings

BUCKET = "watchtower-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
T0 = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
FEATURES = [f"f{i}" for i in range(4)]


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free port, in a thread of this process, with one bucket; yields its endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.update(CREDENTIALS)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def s3_location(endpoint: str, prefix: str) -> str:
    return f"s3://{BUCKET}/{prefix}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


@contextmanager
def bound_to(engine: Engine, location: str, grace_s: float = 3600, max_rows: int = 2_000_000
             ) -> Iterator[binding.Segments]:
    """Bind a store to the (session-wide) test engine for one test, then unbind it."""
    settings = Settings(database_url="sqlite://", segment_store=location, segment_grace_s=grace_s,
                        compact_max_rows=max_rows)
    try:
        yield binding.bind(engine, settings)
    finally:
        engine.update_execution_options(**{binding.OPTION: None})


def add_model(engine: Engine, name: str = "segmented") -> int:
    """A registered model row (no ONNX graph: these tests write events straight to the store)."""
    with Session(writer(engine)) as session:
        pipeline = Pipeline(name=f"{name}-etl")
        session.add(pipeline)
        session.flush()
        model = MonitoredModel(name=name, task="regression", input_style="named", output_kind="value",
                               pipeline_id=pipeline.id, features=[{"name": f, "type": "numeric"} for f in FEATURES])
        session.add(model)
        session.commit()
        assert model.id is not None
        return model.id


def events(n: int, start: datetime = T0, step: timedelta = timedelta(seconds=1), seed: int = 0,
           tag: str = "e") -> pd.DataFrame:
    """n events, one every `step` from `start`, as ingest builds them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.normal(size=n) for f in FEATURES})
    frame[ID] = [f"{tag}{seed}-{i}" for i in range(n)]
    frame[TS] = pd.to_datetime([start + i * step for i in range(n)], utc=True)
    frame[PREDICTION] = rng.normal(size=n)
    frame[LATENCY] = rng.uniform(1, 5, size=n)
    frame[ERROR] = pd.Series([None] * n, dtype=object)
    return frame
