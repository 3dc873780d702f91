"""Prediction ids for rows sent without one: random (version 4) UUIDs in hex, as uuid.uuid4().hex spells them.

The random bytes come from os.urandom 4 KB at a time rather than 16 bytes per id: os.urandom gives up the GIL
around its system call, and on the event loop, while the event writer's thread holds the GIL for a flush, each
give-up could cost a predict a whole switch interval (5 ms) before it runs again.
"""

import os
import threading
import uuid

POOL_BYTES = 4096  # 256 ids


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # the event loop and pool threads (large batches) both draw ids
        self._bytes = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)  # a forked worker must never repeat its parent's ids

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + 16 * n > len(self._bytes):
                self._bytes, self._at = os.urandom(max(POOL_BYTES, 16 * n)), 0
            start, self._at = self._at, self._at + 16 * n
            return self._bytes[start:self._at]

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_pool = _Pool()


def new_ids(n: int) -> list[str]:
    """n random UUIDs (version 4) in hex, each drawn once from the operating system's random source."""
    raw = _pool.take(n)
    return [uuid.UUID(bytes=raw[i:i + 16], version=4).hex for i in range(0, 16 * n, 16)]
