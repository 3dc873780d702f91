"""heap.settle: after a warm-up point, the process's objects leave the cyclic collector's view once (garbage
cycles collected first); nothing happens in a process that did not enable it (the tests, which build many apps)."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from watchtower import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "_enabled", False)
    monkeypatch.setattr(heap, "_settled", set())
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_freezes_once_per_point_only_when_enabled(fresh: None) -> None:
    kept = [[] for _ in range(1000)]
    heap.settle("model")
    assert gc.get_freeze_count() == 0  # not enabled: nothing frozen
    heap.enable()
    frozen = gc.get_freeze_count()
    assert frozen > len(kept)
    more = [[] for _ in range(1000)]
    cycle = Node()
    dead = weakref.ref(cycle)
    del cycle
    heap.settle("model")
    assert dead() is None  # collected before the freeze: a frozen cycle would never be freed
    assert gc.get_freeze_count() >= frozen + len(more)
    after = gc.get_freeze_count()
    later = [[] for _ in range(1000)]
    heap.settle("model")  # once per point
    assert gc.get_freeze_count() == after
    heap.settle("writer")
    assert gc.get_freeze_count() >= after + len(later)
