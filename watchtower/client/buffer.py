"""A bounded FIFO of encoded rows between the callers' threads and the one sender thread."""

import threading
import time
from collections import deque
from dataclasses import dataclass

from watchtower.client.config import OnFull


@dataclass(frozen=True)
class Row:
    """One encoded row and where it goes: kind is "events", "features" (a stage's) or "labels"."""

    model: str
    kind: str
    stage: str | None
    body: str


class ClientClosed(RuntimeError):
    """The client was closed: it takes no more rows."""


class RowBuffer:
    """Callers put rows (blocking or dropping when full); the sender takes batches of them.

    Counters are in rows and only grow: `appended` rows entered, `taken` left for the sender, `settled` were
    answered (sent, rejected or given up). A flush waits until `settled` reaches `appended` at its call.
    """

    def __init__(self, max_rows: int, batch_size: int, interval_s: float, on_full: OnFull) -> None:
        self._rows: deque[Row] = deque()
        self._cond = threading.Condition()
        self._max, self._batch, self._interval, self._on_full = max_rows, batch_size, interval_s, on_full
        self.appended = self.taken = self.settled = self.dropped = 0
        self._flush_to = 0
        self._oldest_at = 0.0
        self.closing = False

    def put(self, row: Row) -> bool:
        """Queue a row; False when the buffer is full and the policy is to drop (the drop is counted)."""
        with self._cond:
            while len(self._rows) >= self._max and not self.closing:
                if self._on_full == "drop":
                    self.dropped += 1
                    return False
                self._cond.wait()
            if self.closing:
                raise ClientClosed("the Watchtower client is closed")
            self._rows.append(row)
            self.appended += 1
            if len(self._rows) == 1:
                self._oldest_at = time.monotonic()
                self._cond.notify_all()  # the sender may be waiting for a first row
            elif len(self._rows) == self._batch:
                self._cond.notify_all()
            return True

    def take(self) -> list[Row]:
        """The next batch: up to batch_size rows once that many are queued, the oldest has waited the interval,
        a flush or close asks for them; [] only when closing with nothing left."""
        with self._cond:
            while not self._rows and not self.closing:
                self._cond.wait()
            while len(self._rows) < self._batch and not self.closing and self._flush_to <= self.taken:
                remaining = self._oldest_at + self._interval - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = [self._rows.popleft() for _ in range(min(self._batch, len(self._rows)))]
            self.taken += len(batch)
            self._oldest_at = time.monotonic()  # what is left waits one more interval at most
            self._cond.notify_all()  # room for blocked callers
            return batch

    def settle(self, n: int) -> None:
        """The sender is done with n more rows (in order)."""
        with self._cond:
            self.settled += n
            self._cond.notify_all()

    def flush(self, timeout_s: float | None) -> bool:
        """Ask for everything queued so far to be sent now; wait until it is settled. False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self.appended
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self.settled < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Take no more rows; the sender drains what is left without waiting for the interval."""
        with self._cond:
            self.closing = True
            self._cond.notify_all()

    def pending(self) -> int:
        """Rows logged but not yet settled."""
        with self._cond:
            return self.appended - self.settled
