"""Fault injection: the operator's probes of issue 9, replayed against real `watchtower serve` processes.

Each scenario runs on a fresh database (a scratch PostgreSQL database on the local server, or a SQLite file)
and prints what was lost, duplicated or delayed. Faults are injected on the scenario's own connections and
databases: the shared PostgreSQL server is never stopped.

    python bench/faults.py [--databases sqlite postgresql] [--fault-s 30] [--only replicas outbox_load ...]

Scenarios:
  db_fault       PostgreSQL: the server's backends terminated every 50 ms for --fault-s; SQLite: the write lock
                 held for --fault-s with a 5 s busy timeout. Do monitor passes go on afterwards, and how late?
  replicas       Two replicas on one database, a monitor every 2 s on drifted traffic: passes per slot, pauses,
                 swaps, Slack posts, webhook calls; then kill -9 of the leader: how long until the other leads.
  outbox_load    One alert to deliver while another process writes to the database without pause: Slack posts.
  slack_outage   Slack answers 500 until the message gives up; then POST /outbox/{id}/retry: is anything lost?
  retry_after    Slack answers 429 with Retry-After: 5: how long until the next attempt.
  kill9_ingest   Three rounds of kill -9 under concurrent ingest: acknowledged events missing afterwards.
  big_body       A 600 MB JSON body: the answer and the server's peak memory.
  upload_healthz /healthz answered during a 200k-row CSV upload: the slowest answer.
"""

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import factories  # noqa: E402  (the tests' real models and frames)
from tests.conftest import TOKEN  # noqa: E402
from tests.processes import Server, metric, start_serve  # noqa: E402
from watchtower.actions.models import ActionRun  # noqa: E402
from watchtower.checks.models import CheckRun  # noqa: E402
from watchtower.db import make_engine, migrate  # noqa: E402
from watchtower.events.models import ServingEvent  # noqa: E402
from watchtower.scheduler.models import JobRun, SchedulerLease  # noqa: E402

POSTGRES = os.environ.get("WATCHTOWER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
MONITOR_JOB = "monitor:churn:default"


@dataclass
class Row:
    scenario: str
    database: str
    lost: str
    duplicated: str
    delayed: str
    notes: str


class Recorder:
    """A local HTTP receiver (Slack API or webhook) that records POSTs and answers as `mode` says."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []
        self.posts = 0  # new top-level messages (not edits of a message or replies in its thread)
        self.mode = "ok"  # ok | fail | 429
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.calls.append((time.monotonic(), recorder.mode))
                body = json.loads(raw or b"{}") if raw.startswith(b"{") else {}
                if recorder.mode == "ok" and not self.path.endswith("chat.update") and "thread_ts" not in body:
                    recorder.posts += 1
                status, headers = {"ok": (200, {}), "fail": (500, {}), "429": (429, {"Retry-After": "5"})}[
                    recorder.mode]
                body = json.dumps({"ok": status == 200, "channel": "C1", "ts": "1.1",
                                   "error": "" if status == 200 else "fail"}).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> int:
        return sum(mode == "ok" for _, mode in self.calls)

    def close(self) -> None:
        self.server.shutdown()


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[tuple[str, Engine]]:
    """A fresh, migrated database of its own."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'faults-{uuid.uuid4().hex[:6]}.db'}"
        engine = make_engine(url)
        migrate(engine)
        yield url, engine
        engine.dispose()
        return
    name = f"watchtower_faults_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


MODELS: factories.BuiltModels | None = None


def register(server: Server, *, interval_s: int, webhook: str | None = None, shift: float = 3.0,
             rows: int = 300) -> None:
    """Register the tests' churn model on `server` and serve `rows` predictions (drifted by `shift`)."""
    global MODELS
    MODELS = MODELS or factories.build_models()
    spec = factories.tensor_spec(monitors=[{"interval_s": interval_s, "min_events": 50}],
                                 pipeline={"name": "churn-etl", "webhook_url": webhook} if webhook else {})
    response = httpx.post(f"{server.base}/models", headers=HEADERS, timeout=120, data={"spec": json.dumps(spec)},
                          files={"primary": ("p.onnx", MODELS.tensor_primary),
                                 "fallback": ("f.onnx", MODELS.tensor_fallback),
                                 "reference": ("r.csv", MODELS.reference.to_csv(index=False).encode())})
    assert response.status_code == 201, response.text
    frame = factories.make_frame(rows, seed=7, shift=shift)
    for start in range(0, rows, 100):
        instances = frame.iloc[start:start + 100][factories.NUMERIC].to_dict("records")
        assert httpx.post(f"{server.base}/models/churn/predict", headers=HEADERS, timeout=60,
                          json={"instances": instances}).status_code == 200


def ok_runs(engine: Engine, job: str = MONITOR_JOB) -> list[JobRun]:
    with Session(engine) as session:
        return list(session.exec(select(JobRun).where(JobRun.job == job, JobRun.status == "ok")
                                 .order_by(JobRun.slot_start)).all())


def wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def scheduler_env(slack: Recorder | None = None, **extra: str) -> dict[str, str]:
    env = {"SCHEDULER_ENABLED": "true", "LEASE_TTL_S": "3", "LEASE_RENEW_S": "0.5", "OUTBOX_INTERVAL_S": "1",
           "MIN_WINDOW_EVENTS": "50"}
    if slack:
        env |= {"SLACK_TOKEN": "xoxb-bench", "SLACK_BASE_URL": slack.url}
    return env | extra


def db_fault(kind: str, workdir: Path, fault_s: float) -> Row:
    with database(kind, workdir) as (url, engine):
        application = f"wt-fault-{uuid.uuid4().hex[:6]}"
        served_url = url + (f"?application_name={application}" if kind == "postgresql" else "")
        server = start_serve(served_url, workdir / "db_fault.log",
                             **scheduler_env(SQLITE_BUSY_TIMEOUT_S="5"))
        try:
            register(server, interval_s=1, shift=0.0)
            wait(lambda: len(ok_runs(engine)) >= 2, 60)
            started = time.monotonic()
            if kind == "postgresql":
                with engine.connect() as conn:
                    while time.monotonic() - started < fault_s:
                        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                          "WHERE application_name = :a"), {"a": application})
                        conn.commit()
                        time.sleep(0.05)
            else:
                lock = sqlite3.connect(str(make_url(url).database), isolation_level=None)
                lock.execute("BEGIN IMMEDIATE")
                time.sleep(fault_s)
                lock.execute("ROLLBACK")
                lock.close()
            ended, before = time.monotonic(), len(ok_runs(engine))
            recovered = wait(lambda: len(ok_runs(engine)) > before, 60)
            delay = time.monotonic() - ended
            alive = wait(lambda: len(ok_runs(engine)) >= before + 5, 30)
            errors = metric(server, "watchtower_job_runs_total", outcome="error")
            lease = metric(server, "watchtower_scheduler_lease_failures_total")
            died = "Exception in thread" in server.log.read_text()
        finally:
            server.stop()
    fault = "backends terminated every 50 ms" if kind == "postgresql" else "write lock held"
    return Row("db_fault", kind, "no passes after the fault" if not (recovered and alive) else "0",
               "0", f"first pass {delay:.1f} s after the fault ended",
               f"{fault} for {fault_s:.0f} s; {errors:.0f} job errors and {lease:.0f} lease failures counted; "
               f"scheduler thread {'died' if died else 'never died'}")


def replicas(kind: str, workdir: Path, _: float) -> Row:
    slack, webhook = Recorder(), Recorder()
    with database(kind, workdir) as (url, engine):
        servers = [start_serve(url, workdir / f"replica-{i}.log", **scheduler_env(slack)) for i in (0, 1)]
        try:
            from tests.conftest import ACT_ON_ANY_BREACH

            assert httpx.put(f"{servers[0].base}/policy", json=ACT_ON_ANY_BREACH, headers=HEADERS).status_code == 200
            register(servers[0], interval_s=2, webhook=webhook.url)
            wait(lambda: slack.delivered() >= 1 and webhook.delivered() >= 1, 90)
            settled = len(ok_runs(engine)) + 5
            wait(lambda: len(ok_runs(engine)) >= settled, 60)
            with Session(engine) as session:
                checks = session.exec(select(CheckRun.detector, CheckRun.created_at)).all()
                actions = Counter(a.detail.split("'")[0] for a in session.exec(select(ActionRun)).all())
                lease = session.get(SchedulerLease, "scheduler")
            per_slot = Counter((d, int(at.timestamp()) // 2) for d, at in checks)
            extra_passes = sum(n - 1 for n in per_slot.values())
            pauses = actions["paused pipeline "]
            swaps = sum(n for detail, n in actions.items() if detail.startswith("serving switched to"))
            assert lease is not None
            [leader] = [s for s in servers if f":{s.process.pid}:" in lease.holder]
            [follower] = [s for s in servers if s is not leader]
            leader.kill()
            killed = time.monotonic()

            def follower_leads() -> bool:
                with Session(engine) as session:
                    current = session.get(SchedulerLease, "scheduler")
                    return current is not None and f":{follower.process.pid}:" in current.holder

            took_over = wait(follower_leads, 60)
            handover = time.monotonic() - killed
        finally:
            for server in servers:
                server.stop()
    slack.close()
    webhook.close()
    dup = (f"{extra_passes} extra passes, {pauses - 1} extra pauses, {swaps - 1} extra swaps, "
           f"{slack.posts - 1} extra Slack alerts, {webhook.delivered() - 1} extra webhook calls")
    return Row("replicas", kind, "0", dup,
               f"leader kill -9 -> follower leads after {handover:.1f} s" if took_over else "no handover",
               "2 replicas, monitor every 2 s, lease TTL 3 s renewed every 0.5 s")


def outbox_load(kind: str, workdir: Path, _: float) -> Row:
    slack = Recorder()
    with database(kind, workdir) as (url, engine):
        server = start_serve(url, workdir / "outbox_load.log", **scheduler_env(slack))
        stop = threading.Event()
        try:
            register(server, interval_s=3600)
            rows = factories.make_frame(2000, seed=3)[factories.NUMERIC].to_dict("records")

            def hammer() -> None:  # ingest without pause: the write lock is almost always taken
                n = 0
                while not stop.is_set():
                    events = [{"id": f"h{n}-{i}", "features": r} for i, r in enumerate(rows)]
                    httpx.post(f"{server.base}/models/churn/events", headers=HEADERS, json={"events": events},
                               timeout=120)
                    n += 1

            writers = [threading.Thread(target=hammer) for _ in range(2)]
            for writer in writers:
                writer.start()
            time.sleep(2)
            # One alert to deliver: a hand-filed incident with its Slack message, as the notify action queues it.
            with Session(engine) as session:
                from alerts.outbox import enqueue

                enqueue(session, "slack", {"channel": "#ml", "text": "bench alert"})
                session.commit()
            queued = time.monotonic()
            wait(lambda: slack.delivered() >= 1, 60)
            first = time.monotonic() - queued
            time.sleep(10)  # room for re-sends
        finally:
            stop.set()
            server.stop()
    slack.close()
    return Row("outbox_load", kind, "0" if slack.delivered() else "1 alert never sent",
               f"{max(slack.delivered() - 1, 0)} extra Slack posts of one alert",
               f"delivered {first:.1f} s after queueing", "2 clients ingesting 2,000 events per request throughout")


def slack_outage(kind: str, workdir: Path, _: float) -> Row:
    slack = Recorder()
    slack.mode = "fail"
    with database(kind, workdir) as (url, engine):
        server = start_serve(url, workdir / "slack_outage.log",
                             **scheduler_env(slack, OUTBOX_RETRY_FOR_S="8"))
        try:
            with Session(engine) as session:
                from alerts.outbox import OutboxMessage, enqueue

                enqueue(session, "slack", {"channel": "#ml", "text": "bench alert"})
                session.commit()

            def failed() -> list[dict[str, Any]]:
                response = httpx.get(f"{server.base}/outbox", params={"status": "failed"}, headers=HEADERS)
                return list(response.json()["items"]) if response.status_code == 200 else []

            gave_up = wait(lambda: bool(failed()), 120)
            attempts = len(slack.calls)
            slack.mode = "ok"
            retried = False
            if gave_up:
                message_id = failed()[0]["id"]
                retried = httpx.post(f"{server.base}/outbox/{message_id}/retry", headers=HEADERS).status_code == 200
            delivered = wait(lambda: slack.delivered() >= 1, 30)
            with Session(engine) as session:
                statuses = Counter(m.status for m in session.exec(select(OutboxMessage)).all())
        finally:
            server.stop()
    slack.close()
    return Row("slack_outage", kind, "0" if delivered else "1 alert (no way to re-send)", "0",
               f"{attempts} failed attempts before giving up", f"API retry {'worked' if retried else 'unavailable'}; "
               f"final statuses {dict(statuses)}")


def retry_after(kind: str, workdir: Path, _: float) -> Row:
    slack = Recorder()
    slack.mode = "429"
    with database(kind, workdir) as (url, engine):
        server = start_serve(url, workdir / "retry_after.log", **scheduler_env(slack))
        try:
            with Session(engine) as session:
                from alerts.outbox import enqueue

                enqueue(session, "slack", {"channel": "#ml", "text": "bench alert"})
                session.commit()
            wait(lambda: len(slack.calls) >= 1, 30)
            slack.mode = "ok"
            wait(lambda: slack.delivered() >= 1, 60)
        finally:
            server.stop()
    slack.close()
    gap = slack.calls[1][0] - slack.calls[0][0] if len(slack.calls) > 1 else float("nan")
    return Row("retry_after", kind, "0" if slack.delivered() else "1", "0",
               f"next attempt {gap:.1f} s after a 429 with Retry-After: 5", "honoured" if gap >= 5 else "ignored")


def kill9_ingest(kind: str, workdir: Path, _: float) -> Row:
    lost_total, acked_total = 0, 0
    with database(kind, workdir) as (url, engine):
        for round_ in range(3):
            server = start_serve(url, workdir / f"kill9-{round_}.log")
            if round_ == 0:
                register(server, interval_s=3600, rows=100)
            acked: list[str] = []
            stop = threading.Event()
            rows = factories.make_frame(200, seed=round_)[factories.NUMERIC].to_dict("records")

            def ingest(worker: int, rows: list[dict[str, Any]] = rows, round_: int = round_,
                       server: Server = server, acked: list[str] = acked, stop: threading.Event = stop) -> None:
                n = 0
                while not stop.is_set():
                    ids = [f"r{round_}-w{worker}-{n}-{i}" for i in range(len(rows))]
                    try:
                        response = httpx.post(f"{server.base}/models/churn/events", headers=HEADERS, timeout=30,
                                              json={"events": [{"id": i, "features": r} for i, r in zip(ids, rows,
                                                                                                        strict=True)]})
                    except httpx.TransportError:
                        return
                    if response.status_code == 200:
                        acked.extend(ids)
                    n += 1

            workers = [threading.Thread(target=ingest, args=(w,)) for w in range(4)]
            for worker in workers:
                worker.start()
            time.sleep(3)
            server.kill()
            stop.set()
            for worker in workers:
                worker.join()
            with Session(engine) as session:
                stored = set(session.exec(select(ServingEvent.event_id)).all())
            lost_total += len(set(acked) - stored)
            acked_total += len(acked)
    return Row("kill9_ingest", kind, f"{lost_total} of {acked_total} acknowledged events", "0", "-",
               "3 rounds of kill -9 during 4 concurrent ingest clients")


def big_body(kind: str, workdir: Path, _: float) -> Row:
    with database(kind, workdir) as (url, _engine):
        server = start_serve(url, workdir / "big_body.log")
        try:
            register(server, interval_s=3600, rows=100)
            row = json.dumps({"id": "x" * 40, "features": dict.fromkeys(factories.NUMERIC, 0.5)}).encode()
            chunk = b",".join([row] * 10_000)
            total = 600 * 1024 * 1024

            def body() -> Iterator[bytes]:
                yield b'{"events": ['
                sent = 0
                while sent < total:
                    yield chunk + b","
                    sent += len(chunk) + 1
                yield row + b"]}"

            try:
                response = httpx.post(f"{server.base}/models/churn/events", headers=HEADERS, content=body(),
                                      timeout=300)
                answer = f"{response.status_code} {response.json().get('title', '')}"
            except httpx.HTTPError as exc:
                answer = f"connection closed by the server ({type(exc).__name__})"
            peak = _peak_rss_mb(server.process.pid)
        finally:
            server.stop()
    return Row("big_body", kind, "0", "0", "-", f"600 MB JSON body: {answer}; server peak RSS {peak:.0f} MB")


def upload_healthz(kind: str, workdir: Path, _: float) -> Row:
    with database(kind, workdir) as (url, _engine):
        server = start_serve(url, workdir / "upload.log")
        try:
            register(server, interval_s=3600, rows=100)
            frame = factories.make_frame(200_000, seed=9)[factories.NUMERIC]
            frame.insert(0, "id", [f"u{i}" for i in range(len(frame))])
            data = frame.to_csv(index=False).encode()
            latencies: list[float] = []
            done = threading.Event()

            def upload() -> None:
                httpx.post(f"{server.base}/models/churn/events/upload", headers=HEADERS, timeout=600,
                           files={"file": ("events.csv", data)})
                done.set()

            threading.Thread(target=upload).start()
            while not done.is_set():
                started = time.monotonic()
                httpx.get(f"{server.base}/healthz", timeout=120)
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)
        finally:
            server.stop()
    return Row("upload_healthz", kind, "0", "0", f"slowest /healthz {max(latencies) * 1000:.0f} ms",
               f"{len(latencies)} probes during a 200k-row CSV upload, p50 "
               f"{float(np.median(latencies)) * 1000:.0f} ms")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


SCENARIOS: dict[str, Callable[[str, Path, float], Row]] = {
    "db_fault": db_fault, "replicas": replicas, "outbox_load": outbox_load, "slack_outage": slack_outage,
    "retry_after": retry_after, "kill9_ingest": kill9_ingest, "big_body": big_body, "upload_healthz": upload_healthz,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--fault-s", type=float, default=30.0)
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            for kind in args.databases:
                if name == "big_body" and kind == "postgresql":
                    continue  # the body is refused (or not) before any database work
                print(f"... {name} on {kind}", file=sys.stderr, flush=True)
                try:
                    rows.append(SCENARIOS[name](kind, Path(tmp), args.fault_s))
                except Exception as exc:  # one broken scenario must not hide the others' results
                    rows.append(Row(name, kind, "?", "?", "?", f"scenario crashed: {type(exc).__name__}: {exc}"))
    print("| scenario | database | lost | duplicated | delayed | notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.scenario} | {r.database} | {r.lost} | {r.duplicated} | {r.delayed} | {r.notes} |")


if __name__ == "__main__":
    main()
