"""Short full passes of the cyclic garbage collector in a long-running server.

A full collection scans every tracked object that is not frozen. `watchtower serve` freezes what start-up built;
heavy modules load later, at first use (a model's graph: onnxruntime; the event writer's first flush: pyarrow;
the first monitor pass: pandas and the detectors), and with them hundreds of thousands of objects that live as
long as the process. Unfrozen, they made each full collection a 60-75 ms pause amid requests (a 1-client predict
benchmark's p99: 18 ms in a run with one such pause, 9 ms without). `settle` freezes them, once per warm-up point.
"""

import gc
import threading

_enabled = False
_settled: set[str] = set()
_lock = threading.Lock()


def enable() -> None:
    """Freeze what the process holds now, and let `settle` freeze again after each warm-up point. Only for a
    server process: one that builds many apps (the tests) would keep each one's cycles forever."""
    global _enabled
    _enabled = True
    gc.freeze()


def settle(point: str) -> None:
    """After the first use of `point` (its lazy imports done): collect, then freeze what is left. Later calls for
    the same point do nothing; so does every call unless `enable` was called."""
    if not _enabled or point in _settled:
        return
    with _lock:
        if point in _settled:
            return
        _settled.add(point)
        gc.collect()  # garbage cycles first: frozen, they would never be freed
        gc.freeze()
