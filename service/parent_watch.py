"""Workers die with their arbiter: a worker whose parent is gone stops instead of serving on as
an orphan nobody supervises (no restarts, no metrics directory, no shutdown)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

logger = logging.getLogger("servewatch.service")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(
    *,
    poll_s: float = 1.0,
    signum: int = signal.SIGTERM,
    stop: Callable[[int], None] | None = None,
) -> threading.Thread:
    """Stop this process (`signum`, a graceful stop) once its parent is gone.

    Linux sends the signal itself when the parent exits (PR_SET_PDEATHSIG); a daemon thread
    that notices the process being re-parented covers other systems, and a parent that died
    before the request was made. The thread is returned so tests can wait for it.
    """
    parent = os.getppid()
    stop = stop or (lambda number: os.kill(os.getpid(), number))
    _ask_the_kernel(signum)
    watcher = threading.Thread(
        target=_watch,
        args=(parent, poll_s, signum, stop),
        name="servewatch-parent-watch",
        daemon=True,
    )
    watcher.start()
    return watcher


def _ask_the_kernel(signum: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())


def _watch(parent: int, poll_s: float, signum: int, stop: Callable[[int], None]) -> None:
    waiting = threading.Event()
    while os.getppid() == parent:
        waiting.wait(poll_s)
    logger.error("the server's arbiter (pid %d) is gone: this worker stops", parent)
    stop(signum)
