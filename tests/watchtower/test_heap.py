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


def frozen(value: object) -> bool:
    """Whether a tracked object is in the permanent generation (gc.get_objects leaves those out). Asked of the
    objects themselves: the process's freeze count also moves when any frozen object is freed."""
    return not any(o is value for o in gc.get_objects())


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "_enabled", False)
    monkeypatch.setattr(heap, "_settled", set())
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_freezes_once_per_point_only_when_enabled(fresh: None) -> None:
    kept: list[list[int]] = [[]]
    heap.settle("model")
    assert not frozen(kept)  # not enabled: nothing frozen
    heap.enable()
    assert frozen(kept)
    more: list[list[int]] = [[]]
    cycle = Node()
    dead = weakref.ref(cycle)
    del cycle
    heap.settle("model")
    assert dead() is None  # collected before the freeze: a frozen cycle would never be freed
    assert frozen(more)
    later: list[list[int]] = [[]]
    heap.settle("model")  # once per point
    assert not frozen(later)
    heap.settle("writer")
    assert frozen(later)
