"""Start-up settings of the realtime server that are not about connections: the garbage collector
(sliders/realtime/lifecycle.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sliders.realtime import lifecycle


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Put the garbage collector back as it was after the test."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    _, middle, old = gc.get_threshold()
    start_up_object = ["loaded at start-up"]

    lifecycle.tune_garbage_collector()

    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(start_up_object)
    assert not any(o is start_up_object for o in gc.get_objects())  # never scanned again
    assert gc.get_threshold() == (lifecycle.YOUNG_COLLECTION_THRESHOLD, middle, old)


@pytest.mark.usefixtures("collector_restored")
def test_cycles_made_while_serving_are_still_collected() -> None:
    lifecycle.tune_garbage_collector()

    class Node:
        other: object = None

    first, second = Node(), Node()
    first.other, second.other = second, first
    del first, second

    assert gc.collect() >= 2
