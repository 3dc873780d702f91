"""The event writer's flush by size, in process: N predict requests of one row each (as the writer gathers them)
stored as one segment with one commit, on SQLite (segment files beside it) or PostgreSQL (segments in the
database). Prints wall and CPU ms per flush and per event, split into building the frame and storing it.

    .venv/bin/python bench/flush_bench.py --sizes 1 8 64 512 --database sqlite
"""

import argparse
import os
import tempfile
import time
import uuid

import numpy as np
from sqlalchemy import MetaData
from sqlmodel import Session

from watchtower.clock import utcnow
from watchtower.db import make_engine, migrate, writer
from watchtower.events.scored import Scored, scored_table
from watchtower.events.store import insert_table
from watchtower.registry.models import MonitoredModel, Pipeline

FEATURES = [f"x{i}" for i in range(11)]


def parts(n: int) -> list[Scored]:
    rng = np.random.default_rng(n)
    return [Scored([uuid.uuid4().hex], {f: rng.normal(size=1) for f in FEATURES}, [int(rng.integers(2))],
                   ("0", "1"), rng.random((1, 2)), 0.3, "primary-v1", utcnow()) for _ in range(n)]


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
    schema = dict.fromkeys(FEATURES, "numeric")
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
    print(f"{'events':>6} {'build ms':>9} {'store ms':>9} {'wall ms':>8} {'CPU ms':>7} {'µs/event':>9}")
    for size in args.sizes:
        build = store = wall = cpu = 0.0
        for _ in range(args.repeat):
            batch = parts(size)
            w0, c0 = time.perf_counter(), time.process_time()
            frame = scored_table(batch, schema, "classification")
            w1 = time.perf_counter()
            with Session(writer(engine)) as session:
                insert_table(session, model, frame)
                session.commit()
            w2, c2 = time.perf_counter(), time.process_time()
            build, store, wall, cpu = build + w1 - w0, store + w2 - w1, wall + w2 - w0, cpu + c2 - c0
        k = 1000 / args.repeat
        print(f"{size:6} {build * k:9.2f} {store * k:9.2f} {wall * k:8.2f} {cpu * k:7.2f} "
              f"{wall * k * 1000 / size:9.1f}")
    print(f"{engine.dialect.name}; load average {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
