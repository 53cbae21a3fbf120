import gc
import weakref

import pytest

from investigator.memory import few_collections


class _Node:
    itself: object = None


def test_few_collections_sets_the_process_objects_aside_and_restores_everything():
    before = gc.get_threshold()
    with few_collections():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] > 100 * before[0] - 1
        node = _Node()
        node.itself = node
        ref = weakref.ref(node)
        del node
        gc.collect()
        assert ref() is None  # cycles are still collected: less often, not never
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(ValueError), few_collections():
        raise ValueError("restored on errors too")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
