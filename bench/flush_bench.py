"""The event writer's flush by size, in process: N predict requests of one row each, each with its audit row (as
the writer gathers them), stored by `write_batch` (one segment, the keys, the audit rows, one commit) on the
connection the writer holds, on SQLite (segment files beside it) or PostgreSQL (segments in the database). Prints
wall and CPU ms per flush and per event, and which path stored it (small: up to small_flush.ROWS predictions).
The objects start-up and the first flush made are frozen out of the collector's view, as in a server (heap.py).

    .venv/bin/python bench/flush_bench.py --sizes 1 8 64 512 --database sqlite
"""

import argparse
import gc
import os
import tempfile
import time
import uuid

import numpy as np
from sqlalchemy import MetaData
from sqlmodel import Session

from watchtower.clock import utcnow
from watchtower.db import make_engine, migrate, writer
from watchtower.events.flush import Pending, write_batch
from watchtower.events.scored import Scored
from watchtower.events.small_flush import fits
from watchtower.registry.models import MonitoredModel, Pipeline

FEATURES = [f"x{i}" for i in range(11)]


def requests(model: MonitoredModel, n: int) -> list[Pending]:
    """n one-row predict requests as predict hands them over: the scored columns and the audit row."""
    rng = np.random.default_rng(n)
    return [Pending(model, Scored([uuid.uuid4().hex], {f: rng.normal(size=1) for f in FEATURES},
                                  [int(rng.integers(2))], ("0", "1"), rng.random((1, 2)), 0.3, "primary-v1", utcnow()),
                    durable=True, audit={"at": utcnow(), "actor": "api-token", "user_id": None, "token_id": None,
                                         "method": "POST", "route": "/models/{name}/predict",
                                         "path": "/models/bench/predict", "params": {"name": "bench", "events": 1},
                                         "status": 200, "client": "127.0.0.1"})
            for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64, 512])
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL this may wipe")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp()}/flush.db" if args.database == "sqlite" else args.database
    engine = make_engine(url)
    if args.database != "sqlite":
        meta = MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    migrate(engine)
    with Session(engine) as session:
        pipeline = Pipeline(name="bench")
        session.add(pipeline)
        session.flush()
        model = MonitoredModel(name="bench", task="classification", target="label", pipeline_id=pipeline.id,
                               features=[{"name": f, "type": "numeric"} for f in FEATURES], input_style="tensor",
                               output_kind="tensor(int64)")
        session.add(model)
        session.commit()
        session.refresh(model)
        session.expunge(model)
    connection = writer(engine).connect()  # held between flushes, as the writer holds its own
    write_batch(connection, requests(model, 1))  # the lazy imports of a first flush
    gc.collect()
    gc.freeze()
    print(f"{'events':>6} {'path':>7} {'wall ms':>8} {'CPU ms':>7} {'CPU µs/event':>13}")
    for size in args.sizes:
        wall = cpu = 0.0
        for _ in range(args.repeat):
            batch = requests(model, size)
            w0, c0 = time.perf_counter(), time.process_time()
            write_batch(connection, batch)
            wall, cpu = wall + time.perf_counter() - w0, cpu + time.process_time() - c0
        k = 1000 / args.repeat
        path = "small" if fits(batch) else "general"
        print(f"{size:6} {path:>7} {wall * k:8.2f} {cpu * k:7.2f} {cpu * k * 1000 / size:13.1f}")
    print(f"{engine.dialect.name}; load average {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
