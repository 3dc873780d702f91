"""Prediction logging off the request path: requests hand their events to a bounded buffer, and one writer
thread stores whatever has gathered as one segment per model with one commit (group commit; what a flush
writes: flush.py).

- durable: the request waits for the flush holding its events (a 2xx means committed). Flushed at once: the
  requests that arrive while a flush is under way share the next one.
- async: the request returns once its events are buffered; they are flushed every WATCHTOWER_LOG_FLUSH_MS or
  WATCHTOWER_LOG_FLUSH_EVENTS. What a kill -9 can lose is what the buffer holds (at most
  WATCHTOWER_LOG_BUFFER_EVENTS events).
- The buffer counts events until they are committed; a request that does not fit waits for room (never a drop),
  and after WATCHTOWER_LOG_WAIT_S gets a 503 with nothing stored.
- A failed flush (database down) rolls back whole: durable requests in it get a 503 (resending is idempotent),
  async events stay buffered and are retried with backoff. The thread never dies.
"""

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from alerts.metrics import Metrics
from watchtower import heap
from watchtower.db import writer
from watchtower.errors import Unavailable
from watchtower.events.flush import Events, Pending, profile_segments, write_batch
from watchtower.registry.models import MonitoredModel
from watchtower.settings import Settings

log = logging.getLogger(__name__)
BACKOFF_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)  # between retries of a failed flush
WRITER_CACHE_KIB = 65_536


def log_mode(model: MonitoredModel, settings: Settings) -> str:
    """durable | async: the model's own mode, else WATCHTOWER_LOG_MODE."""
    return model.log_mode or settings.log_mode


class EventWriter:
    """The buffer and its writer thread; one per process, started and stopped by the app's lifespan."""

    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics) -> None:
        self._engine, self._settings, self._metrics = writer(engine), settings, metrics
        self._connection: Connection | None = None  # the writer thread's own, held between flushes
        self._cond = threading.Condition()
        self._queue: deque[Pending] = deque()
        self._held = 0  # events buffered or being written: what the bound counts and a crash can lose
        self._queued = 0  # events waiting for a flush
        self._durable = 0  # durable requests waiting for a flush
        self._oldest: float | None = None  # when the oldest waiting request arrived
        self._stopping = False
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30) -> None:
        """Flush what is buffered (retrying for up to `timeout_s`), then end the thread."""
        with self._cond:
            self._stopping, self._stop_deadline = True, time.monotonic() + timeout_s
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s + 5)

    def write(self, model: MonitoredModel, rows: Events, *, durable: bool,
              audit: dict[str, Any] | None = None) -> int | None:
        """Buffer one request's events (and its audit row); durable: wait until they are committed and return
        how many were new."""
        future = self.submit(model, rows, durable=durable, audit=audit)
        if not durable:
            return None
        try:
            return future.result(timeout=self._settings.log_wait_s)
        except FutureTimeout:
            raise self._not_stored() from None

    async def write_async(self, model: MonitoredModel, rows: Events, *, durable: bool,
                          audit: dict[str, Any] | None = None) -> int | None:
        """write() for a coroutine: no thread is held while a durable request waits for its flush, and only a
        request that finds the buffer full waits for room in one."""
        future = self.try_submit(model, rows, durable=durable, audit=audit)
        if future is None:
            future = await run_in_threadpool(self.submit, model, rows, durable=durable, audit=audit)
        if not durable:
            return None
        try:  # shielded: a timeout or a client gone must not cancel the future the writer thread resolves
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._settings.log_wait_s)
        except TimeoutError:
            raise self._not_stored() from None

    def _not_stored(self) -> Unavailable:
        """What a durable request gets when its flush did not commit within WATCHTOWER_LOG_WAIT_S."""
        return Unavailable(f"the events were not stored within {self._settings.log_wait_s:g} s (database slow or "
                           "unreachable); resend them (ids make it idempotent)")

    def submit(self, model: MonitoredModel, rows: Events, *, durable: bool,
               audit: dict[str, Any] | None = None) -> Future[int]:
        """Put one request's events in the buffer, waiting for room while it is full."""
        future = self._put(Pending(model, rows, durable, audit), wait=True)
        assert future is not None
        return future

    def try_submit(self, model: MonitoredModel, rows: Events, *, durable: bool,
                   audit: dict[str, Any] | None = None) -> Future[int] | None:
        """submit, or None at once when the buffer has no room (a caller on the event loop must not wait)."""
        return self._put(Pending(model, rows, durable, audit), wait=False)

    def _put(self, item: Pending, *, wait: bool) -> Future[int] | None:
        n = item.n
        deadline = time.monotonic() + self._settings.log_wait_s
        with self._cond:
            # A request larger than the whole buffer goes in alone, once the buffer is empty.
            if self._held > 0 and self._held + n > self._settings.log_buffer_events:
                if not wait:
                    return None
                self._wait_for_room(n, deadline)
            if self._stopping:
                raise Unavailable("the server is shutting down; nothing was stored, resend to another replica")
            # Wake the writer only when this request changes its plan: it sleeps without a timeout on an empty
            # buffer, and otherwise until the oldest request is due (a wake-up per request costs a thread switch).
            wake = (not self._queue or item.durable
                    or self._queued < self._settings.log_flush_events <= self._queued + n)
            self._queue.append(item)
            self._held += n
            self._queued += n
            self._durable += item.durable
            self._oldest = self._oldest or time.monotonic()
            self._metrics.event_buffer.set(self._held)
            if wake:
                self._cond.notify_all()
        return item.future

    def _wait_for_room(self, n: int, deadline: float) -> None:
        """Back-pressure (called with the lock held): wait until n more events fit, or 503 at the deadline."""
        self._metrics.event_buffer_waiting.inc()
        try:
            while not self._stopping and self._held > 0 and self._held + n > self._settings.log_buffer_events:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._metrics.event_buffer_timeouts.inc()
                    raise Unavailable(f"the event buffer stayed full for {self._settings.log_wait_s:g} s (database "
                                      "slow or unreachable); nothing was stored, resend later")
                self._cond.wait(remaining)
        finally:
            self._metrics.event_buffer_waiting.dec()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._connection is not None:
                self._connection.close()

    def _loop(self) -> None:
        failures = 0
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if self._flush(batch):
                failures = 0
                continue
            failures += 1
            with self._cond:
                if self._stopping and time.monotonic() >= self._stop_deadline:
                    self._abandon()
                    return
                self._cond.wait_for(lambda: self._stopping and time.monotonic() >= self._stop_deadline,
                                    BACKOFF_S[min(failures, len(BACKOFF_S)) - 1])

    def _next_batch(self) -> list[Pending] | None:
        """Wait for something to flush: at once for a durable request, else for the interval or the count."""
        flush_s = self._settings.log_flush_ms / 1000
        with self._cond:
            while True:
                if not self._queue:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                due = (self._oldest or 0) + flush_s
                if self._durable or self._stopping or self._queued >= self._settings.log_flush_events:
                    break
                if time.monotonic() >= due:
                    break
                self._cond.wait(due - time.monotonic())
            batch = list(self._queue)
            self._queue.clear()
            self._queued, self._durable, self._oldest = 0, 0, None
            return batch

    def _flush(self, batch: list[Pending]) -> bool:
        """One transaction for the whole batch, one segment per model; resolve or requeue every request."""
        started = time.perf_counter()
        try:
            connection = self._own_connection()
            try:
                counts, written = write_batch(connection, batch)
            except Exception as exc:
                # SQLAlchemy says so on its exceptions; the small flush's driver errors invalidate the connection
                if not (isinstance(exc, DBAPIError) and exc.connection_invalidated or connection.invalidated):
                    raise
                # The held connection died (a database restart, an idle timeout): once more on a new one, which
                # the pool pings first. Safe if the lost commit did happen: the keys make the rows duplicates.
                log.info("the event writer's database connection was lost; flushing again on a new one")
                counts, written = write_batch(self._own_connection(), batch)
        except Exception as exc:  # the loop must go on: counted, logged, durable callers told, async retried
            self._metrics.event_flushes.labels("error").inc()
            log.warning("flushing %d buffered events failed (%s: %s); durable requests get a 503, async events are "
                        "retried", sum(p.n for p in batch), type(exc).__name__, str(exc).strip()[:300])
            self._fail_durable_and_requeue(batch)
            return False
        self._metrics.event_flushes.labels("ok").inc()
        self._metrics.event_flush_duration.observe(time.perf_counter() - started)
        for item, accepted in zip(batch, counts, strict=True):
            item.future.set_result(accepted)
        self._release(sum(p.n for p in batch))
        # After the answers: no request waits for its events' profile.
        profile_segments(self._engine, written, self._settings.profile_min_rows)
        heap.settle("event-writer")
        return True

    def _own_connection(self) -> Connection:
        """The writer thread's connection, kept between flushes: a pool checkout per flush cost a ping (a round trip
        to PostgreSQL) and the pool's bookkeeping. A connection that died is replaced."""
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            if self._connection is not None:
                self._connection.close()
            self._connection = self._engine.connect()
            if self._engine.dialect.name == "sqlite":
                # Its own page cache of up to 64 MiB (SQLite's default is 2): random event ids (UUIDs) land all
                # over the keys' index, which outgrows 2 MiB at about 30,000 keys.
                driver: Any = self._connection.connection.driver_connection
                driver.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        return self._connection

    def _fail_durable_and_requeue(self, batch: list[Pending]) -> None:
        failed = [p for p in batch if p.durable]
        for item in failed:
            item.future.set_exception(Unavailable("the database could not store the events; nothing was stored, "
                                                  "resend them (ids make it idempotent)"))
        kept = [p for p in batch if not p.durable]
        with self._cond:
            self._queue.extendleft(reversed(kept))  # oldest first again, before what arrived meanwhile
            self._queued += sum(p.n for p in kept)
            if kept:
                self._oldest = time.monotonic() - self._settings.log_flush_ms / 1000  # due at the next attempt
        self._release(sum(p.n for p in failed))

    def _abandon(self) -> None:
        """Shutting down and the database stayed unreachable: say what is lost (called with the lock held)."""
        lost = sum(p.n for p in self._queue)
        log.error("shutting down with %d async events unstored: the database stayed unreachable", lost)
        for item in self._queue:
            item.future.set_exception(Unavailable("the server shut down before the events could be stored"))
        self._queue.clear()
        self._metrics.event_buffer.set(0)

    def _release(self, n: int) -> None:
        with self._cond:
            self._held -= n
            self._metrics.event_buffer.set(self._held)
            self._cond.notify_all()
