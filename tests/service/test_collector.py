import gc

import pytest

from core.config import Settings
from service.collector import settle_collector


@pytest.fixture
def collector():
    """The collector's thresholds and frozen objects, as they were before the test."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_youngest_generation_is_collected_at_the_configured_threshold(collector):
    older = gc.get_threshold()[1:]
    settle_collector(20_000)
    assert gc.get_threshold() == (20_000, *older)


def test_what_is_alive_is_frozen_out_of_the_collector(collector):
    gc.unfreeze()
    kept = [[] for _ in range(100)]
    settle_collector(700)
    assert gc.get_freeze_count() >= len(kept)


def test_the_threshold_is_a_setting(monkeypatch):
    monkeypatch.setenv("SERVEWATCH_GC_YOUNG_THRESHOLD", "5000")
    assert Settings().gc_young_threshold == 5000
    monkeypatch.delenv("SERVEWATCH_GC_YOUNG_THRESHOLD")
    assert Settings().gc_young_threshold == 20_000
    monkeypatch.setenv("SERVEWATCH_GC_YOUNG_THRESHOLD", "10")
    with pytest.raises(ValueError, match="greater than or equal to 100"):
        Settings()
