"""`Client`: log predictions, labels and stage features from a model served elsewhere, off the caller's path."""

import atexit
import json
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

import httpx

from watchtower.client.buffer import Row, RowBuffer
from watchtower.client.config import OnFull, from_env
from watchtower.client.sender import Outcome, Sender, groups

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientStats:
    """Rows so far: logged into the buffer, sent (2xx), dropped (buffer full), rejected (4xx, not retried),
    failed (5xx or unreachable for retry_for_s, or still unsent when close timed out)."""

    logged: int
    sent: int
    dropped: int
    rejected: int
    failed: int
    retries: int
    pending: int
    last_problem: dict[str, Any] | None


class Client:
    """Batches rows in memory and sends them from one background thread; every call returns at once.

    Thread-safe. Flushed by `flush()`, `close()`, leaving a `with` block, and at interpreter exit.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, model: str | None = None,
                 batch_size: int | None = None, flush_interval_s: float | None = None,
                 max_buffer: int | None = None, on_full: OnFull | None = None, retry_for_s: float | None = None,
                 max_backoff_s: float | None = None, timeout_s: float | None = None,
                 close_timeout_s: float | None = None) -> None:
        self.config = from_env(url=url, token=token, batch_size=batch_size, flush_interval_s=flush_interval_s,
                               max_buffer=max_buffer, on_full=on_full, retry_for_s=retry_for_s,
                               max_backoff_s=max_backoff_s, timeout_s=timeout_s, close_timeout_s=close_timeout_s)
        self.model = model
        config = self.config
        self._buffer = RowBuffer(config.max_buffer, config.batch_size, config.flush_interval_s, config.on_full)
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self._http = httpx.Client(base_url=config.url, headers=headers, timeout=config.timeout_s)
        self._stop = threading.Event()  # set when close() gave up waiting: the sender stops retrying
        self._lock = threading.Lock()
        self._sender = Sender(self._http, config.retry_for_s, config.max_backoff_s, self._stop, self._count_retry)
        self._outcome = Outcome()
        self._retries = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="watchtower-client", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log_prediction(self, features: Mapping[str, Any], prediction: Any = None, *, id: str | None = None,
                       ts: datetime | None = None, scores: Mapping[str, float] | None = None,
                       latency_ms: float | None = None, error: str | None = None, version: str | None = None,
                       model: str | None = None) -> str:
        """Queue one serving event (ts defaults to now, id to a new UUID); returns its id, for log_label."""
        event_id = id or uuid.uuid4().hex
        row: dict[str, Any] = {"id": event_id, "ts": (ts or datetime.now(UTC)).isoformat(),
                               "features": features, "prediction": prediction}
        for key, value in (("scores", scores), ("latency_ms", latency_ms), ("error", error), ("version", version)):
            if value is not None:
                row[key] = value
        self._put(model, "events", None, row)
        return event_id

    def log_label(self, id: str, label: Any, *, model: str | None = None) -> None:
        """Queue the ground truth of a prediction id; sent after every event queued before it."""
        self._put(model, "labels", None, {"id": id, "label": label})

    def log_stage_features(self, stage: str, id: str, features: Mapping[str, Any], *,
                           model: str | None = None) -> None:
        """Queue one entity's features as pipeline stage `stage` (e.g. "training") produced them."""
        self._put(model, "features", stage, {"id": id, "features": features})

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything queued so far and wait until the server answered it; False on timeout."""
        return self._buffer.flush(timeout_s)

    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        with self._lock:
            o = self._outcome
            return ClientStats(logged=self._buffer.appended, sent=o.sent, dropped=self._buffer.dropped,
                               rejected=o.rejected, failed=o.failed, retries=self._retries,
                               pending=self._buffer.pending(), last_problem=o.problems[-1] if o.problems else None)

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and stop (waiting at most close_timeout_s); rows still unsent then are counted as failed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._buffer.close()
        self._thread.join(self.config.close_timeout_s if timeout_s is None else timeout_s)
        if self._thread.is_alive():
            self._stop.set()  # interrupt a retry wait; what is left is lost
            self._thread.join(self.config.timeout_s + 1)
            with self._lock:
                self._outcome.failed += self._buffer.pending()
            log.error("watchtower client: closed with %d rows unsent", self._buffer.pending())
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _put(self, model: str | None, kind: str, stage: str | None, row: dict[str, Any]) -> None:
        name = model or self.model
        if not name:
            raise ValueError("no model: pass model= to the call or to Client(...)")
        self._buffer.put(Row(name, kind, stage, json.dumps(row, default=_plain)))

    def _run(self) -> None:
        """The sender thread: take a batch, post it by endpoint in order, count, settle; until closed."""
        while not self._stop.is_set():
            batch = self._buffer.take()
            if not batch:
                return
            for group in groups(batch):
                try:
                    outcome = self._sender.send(group)
                except Exception:  # the thread must go on: count the rows as failed
                    log.exception("watchtower client: sending %d rows failed", len(group))
                    outcome = Outcome(failed=len(group))
                self._count(outcome)
            self._buffer.settle(len(batch))

    def _count(self, outcome: Outcome) -> None:
        for problem in outcome.problems:
            log.warning("watchtower client: %s refused rows (not retried): %s %s", problem.get("path"),
                        problem.get("detail"), problem.get("errors", ""))
        with self._lock:
            total = self._outcome
            total.sent += outcome.sent
            total.rejected += outcome.rejected
            total.failed += outcome.failed
            total.problems = (total.problems + outcome.problems)[-1:]

    def _count_retry(self) -> None:
        with self._lock:
            self._retries += 1


def _plain(value: Any) -> Any:
    """JSON for what json does not know: numpy scalars and arrays, dates."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
