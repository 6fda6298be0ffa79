from __future__ import annotations

import os
import threading

import pytest

from service.background import yield_to_requests


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="scheduling classes are Linux's")
def test_a_background_thread_yields_and_leaves_the_others_alone():
    seen: list[int] = []

    def background() -> None:
        yield_to_requests()
        seen.append(os.sched_getscheduler(0))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == [os.SCHED_BATCH]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller (the event loop's thread)
