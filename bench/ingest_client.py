"""Events/s through `watchtower.client`, end to end: from the first log_prediction to the server's commit of the last
row (the client's flush returns once every batch got its 2xx, and a 2xx from POST /events means committed).

    python bench/ingest_client.py [--n 20000] [--db sqlite|postgresql] [--batch-size 1000]
    python bench/ingest_client.py --url http://127.0.0.1:8000 --token T --model churn   # a running server

Without --url it starts a `watchtower serve` on a fresh database (a SQLite file, or the PostgreSQL database
WATCHTOWER_TEST_POSTGRES_URL names, whose tables it drops) and registers the tests' churn model.
bench/ingest_bench.py calls `measure_client`.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from watchtower.client import Client  # noqa: E402

if TYPE_CHECKING:
    from tests.processes import Server


def _features(base_url: str, token: str, model: str) -> list[tuple[str, str]]:
    """The model's (feature, numeric|categorical) pairs, read from GET /models/{model}."""
    response = httpx.get(f"{base_url}/models/{model}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return [(f["name"], f["type"]) for f in response.json()["features"]]


def measure_client(base_url: str, token: str, model: str, n: int, batch_size: int = 1000) -> float:
    """Log n predictions (valid for the model's schema) through one Client; events/s until all are stored."""
    schema = _features(base_url, token, model)
    rng = random.Random(0)
    rows = [{name: rng.gauss(0, 1) if kind == "numeric" else rng.choice("abc") for name, kind in schema}
            for _ in range(min(n, 1000))]  # made before the clock starts; reused cyclically
    run = f"{time.time_ns():x}"
    with Client(base_url, token, model=model, batch_size=batch_size, max_buffer=max(n, batch_size),
                flush_interval_s=0.05) as client:
        started = time.perf_counter()
        for i in range(n):
            client.log_prediction(rows[i % len(rows)], prediction=1, id=f"bench-{run}-{i}")
        assert client.flush(timeout_s=600), "the client did not flush within 600 s"
        elapsed = time.perf_counter() - started
        stats = client.stats()
    if stats.sent != n:
        raise RuntimeError(f"only {stats.sent} of {n} events were stored: {stats}")
    return n / elapsed


def _serve(database: str, workdir: Path) -> "Server":
    """A `watchtower serve` on a fresh database with the tests' churn model registered."""
    from sqlalchemy import MetaData

    from tests import factories
    from tests.conftest import TOKEN
    from tests.processes import start_serve
    from watchtower.db import make_engine, migrate

    url = f"sqlite:///{workdir / 'ingest-client.db'}" if database == "sqlite" else os.environ.get(
        "WATCHTOWER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test_client")
    engine = make_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    migrate(engine)
    engine.dispose()
    server = start_serve(url, workdir / "serve.log")
    models = factories.build_models()
    response = httpx.post(f"{server.base}/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120,
                          data={"spec": json.dumps(factories.tensor_spec())},
                          files={"primary": ("p.onnx", models.tensor_primary),
                                 "fallback": ("f.onnx", models.tensor_fallback),
                                 "reference": ("r.csv", models.reference.to_csv(index=False).encode())})
    response.raise_for_status()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--token", default=os.environ.get("WATCHTOWER_API_TOKEN", ""))
    parser.add_argument("--model", default="churn")
    args = parser.parse_args()
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.url:
        rate = measure_client(args.url, args.token, args.model, args.n, args.batch_size)
        print(f"client -> {args.url}: {args.n:,} events, {rate:,.0f} events/s")
        return
    with tempfile.TemporaryDirectory() as workdir:
        from tests.conftest import TOKEN

        server = _serve(args.db, Path(workdir))
        try:
            rate = measure_client(server.base, TOKEN, args.model, args.n, args.batch_size)
        finally:
            server.stop()
    print(f"client -> watchtower serve ({args.db}): {args.n:,} events in batches of {args.batch_size}, "
          f"{rate:,.0f} events/s end to end")


if __name__ == "__main__":
    main()
