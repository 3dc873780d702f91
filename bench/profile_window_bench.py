"""How long `window_profile` takes, and how much memory, over a window of ~100M events in compacted segments.

A synthetic manifest: `--segments` live segments of `--rows` rows each (the compaction target), each with a
stored profile of 20 numeric and 5 categorical features (50 categories each), a classifier's prediction and two
class probabilities. The profiles are built from `--profile-rows` real values (a KLL sketch's size stops growing
long before that), rotated among `--distinct` different ones; the manifest rows say `--rows`. Two more segments,
real Parquet files of `--edge-rows` rows, straddle the window's edges and are read exactly.

Each measurement runs in a fresh process: wall and CPU time of window_profile, and peak RSS (VmHWM) minus the
RSS before the call. Run 0 is cold (the process's first window: lazy imports and first-use allocations count);
later runs first profile an empty window, then reset VmHWM (/proc/self/clear_refs), so they show what a window
costs in a running service. Usage:

    .venv/bin/python bench/profile_window_bench.py --segments 150 --rows 666667
"""

import argparse
import multiprocessing
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]


def frame(n: int, seed: int, start: datetime, span: timedelta) -> pd.DataFrame:
    from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS

    rng = np.random.default_rng(seed)
    data: dict[str, object] = {f: rng.normal(size=n) for f in NUMERIC}
    cats = np.array([f"k{j}" for j in range(50)], dtype=object)
    data.update({c: cats[rng.integers(0, 50, size=n)] for c in CATEGORICAL})
    data[ID] = np.array([f"e{seed}-{i}" for i in range(n)], dtype=object)
    data[TS] = pd.date_range(start, start + span, periods=n, tz="UTC").astype("datetime64[ns, UTC]")
    data[PREDICTION] = np.array(["0", "1"], dtype=object)[rng.integers(0, 2, size=n)]
    proba = rng.uniform(size=n)
    data[f"{PROBA_PREFIX}1"], data[f"{PROBA_PREFIX}0"] = proba, 1 - proba
    data[LATENCY], data[ERROR] = rng.uniform(1, 5, size=n), np.full(n, None, dtype=object)
    return pd.DataFrame(data)


def setup(url: str, store: str, args: argparse.Namespace) -> tuple[datetime, datetime]:
    from sqlmodel import Session

    from watchtower.db import make_engine, migrate, writer
    from watchtower.events.models import EventSegment
    from watchtower.events.segstore import binding
    from watchtower.events.segstore.manifest import as_table, place
    from watchtower.events.segstore.profiles import profile_table
    from watchtower.registry.models import MonitoredModel, Pipeline
    from watchtower.settings import Settings

    engine = make_engine(url)
    migrate(engine)
    segments = binding.bind(engine, Settings(database_url=url, segment_store=store))
    features = [{"name": f, "type": "numeric"} for f in NUMERIC] + [{"name": c, "type": "categorical"}
                                                                    for c in CATEGORICAL]
    with Session(writer(engine)) as session:
        pipeline = Pipeline(name="bench-etl")
        session.add(pipeline)
        session.flush()
        model = MonitoredModel(name="bench", task="classification", input_style="named", output_kind="label",
                               pipeline_id=pipeline.id, features=features)
        session.add(model)
        session.commit()
        session.refresh(model)
    profiles = [profile_table(model, frame(args.profile_rows, seed, T0, timedelta(hours=1)), segments).to_bytes()
                for seed in range(args.distinct)]
    print(f"profile bytes per segment: {np.mean([len(p) for p in profiles]) / 1e3:.0f} KB")
    hour = timedelta(hours=1)
    with Session(writer(engine)) as session:
        for i in range(args.segments):  # segment i covers hour i+1 (hour 0 and the last one hold the edges)
            low = T0 + (i + 1) * hour
            session.add(EventSegment(model_id=model.id, min_ts=low, max_ts=low + hour - timedelta(seconds=1),
                                     n_rows=args.rows, path=f"synthetic/{i}.parquet",
                                     profile=profiles[i % len(profiles)]))
        for j, low in enumerate((T0, T0 + (args.segments + 1) * hour) if args.edge_rows else ()):
            edge = place(engine, model.id or 0, as_table(frame(args.edge_rows, 100 + j, low, hour)))
            assert edge is not None
            session.add(edge)
        session.commit()
    engine.dispose()
    return T0 + hour / 2, T0 + (args.segments + 1) * hour + hour / 2


def measure(url: str, store: str, start: datetime, end: datetime, batch: int, warm: bool,
            queue: "multiprocessing.Queue[object]") -> None:
    from sqlmodel import Session, select

    from watchtower.db import make_engine
    from watchtower.events.segstore import binding, profiles
    from watchtower.events.segstore.profiles import window_profile
    from watchtower.registry.models import MonitoredModel
    from watchtower.settings import Settings

    profiles.MERGE_BATCH = batch
    engine = make_engine(url)
    binding.bind(engine, Settings(database_url=url, segment_store=store))
    with Session(engine) as session:
        model = session.exec(select(MonitoredModel)).one()
        if warm:  # one-time costs (lazy imports, Arrow's and SQLAlchemy's first use) out of the measure
            window_profile(session, model, start, start + timedelta(microseconds=1))
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # resets VmHWM to the current RSS
        before = _rss_kb()
        started, cpu = time.perf_counter(), time.process_time()
        result = window_profile(session, model, start, end)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = _hwm_kb()
    queue.put((wall, cpu, (peak - before) / 1024, result.rows, result.segments_profiled, result.segments_read,
               result.rows_read))


def _rss_kb(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def _hwm_kb() -> int:
    return _rss_kb("VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=150)
    parser.add_argument("--rows", type=int, default=666_667)
    parser.add_argument("--profile-rows", type=int, default=200_000)
    parser.add_argument("--distinct", type=int, default=8)
    parser.add_argument("--edge-rows", type=int, default=500_000)
    parser.add_argument("--store", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--merge-batch", type=int, default=16, help="profiles decoded and held at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        store = os.path.join(tmp, "segments")
        start, end = setup(url, store, args)
        context = multiprocessing.get_context("spawn")  # a fresh process: nothing cached, RSS from its start
        for run in range(args.runs):
            queue: multiprocessing.Queue[object] = context.Queue()
            process = context.Process(target=measure, args=(url, store, start, end, args.merge_batch, run > 0, queue))
            process.start()
            wall, cpu, peak_mb, rows, profiled, read, rows_read = queue.get()  # type: ignore[misc]
            process.join()
            mode = "warm" if run else "cold"
            print(f"run {run} ({mode} process): {wall:.3f} s wall, {cpu:.3f} s CPU, peak +{peak_mb:.0f} MB; "
                  f"rows {rows:,} (manifest says {args.segments * args.rows + args.edge_rows:,}); {profiled} "
                  f"segments from profiles, {read} read exactly ({rows_read:,} rows); load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
