"""The collector setting of long-running processes: fewer passes, cycles still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from bootstrap.heap import YOUNG_THRESHOLD, settle_for_serving


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_startup_objects_are_frozen_and_young_passes_are_rarer(restored_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    survivor = _Node()  # built "at startup": lives as long as the process
    settle_for_serving()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert any(survivor is obj for obj in gc.get_objects()) is False  # not tracked any more


def test_a_cycle_made_after_settling_is_still_freed(restored_gc: None) -> None:
    settle_for_serving()
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    gc.collect()
    assert gone() is None


def test_a_larger_threshold_already_set_is_kept(restored_gc: None) -> None:
    gc.set_threshold(50_000, 20, 30)
    settle_for_serving()
    assert gc.get_threshold() == (50_000, 20, 30)
