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
# `servewatch serve` names its own pid here before it becomes BentoML's arbiter (execve keeps
# the pid), so a worker still starting when the arbiter dies knows it was orphaned.
ARBITER_PID_ENV = "SERVEWATCH_ARBITER_PID"


def die_with_parent(
    *,
    poll_s: float = 1.0,
    grace_s: float = 10.0,
    signum: int = signal.SIGTERM,
    stop: Callable[[int], None] | None = None,
) -> threading.Thread:
    """Stop this process (`signum`, a graceful stop) once its parent is gone.

    Linux sends the signal itself when the parent exits (PR_SET_PDEATHSIG); a daemon thread
    that notices the process being re-parented covers other systems, and a parent that died
    before this call. A graceful stop that has not ended after `grace_s` becomes a SIGKILL:
    the prediction log is on disk before an answer goes out, so nothing is lost by it. The
    thread is returned so tests can wait for it.
    """
    parent = expected_parent()
    stop = stop or (lambda number: os.kill(os.getpid(), number))
    _ask_the_kernel(signum)
    watcher = threading.Thread(
        target=_watch,
        args=(parent, poll_s, grace_s, signum, stop),
        name="servewatch-parent-watch",
        daemon=True,
    )
    watcher.start()
    return watcher


def expected_parent() -> int:
    """The arbiter named by `servewatch serve` when it is (or was) our parent, else our parent."""
    current = os.getppid()
    named = os.environ.get(ARBITER_PID_ENV, "")
    if not named.isdigit() or int(named) == current:
        return current
    # The named arbiter is not our parent: it died before we looked (we were re-parented), or
    # the variable was inherited by a process it never started (then it is still alive).
    return current if _alive(int(named)) else int(named)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ask_the_kernel(signum: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())


def _watch(
    parent: int, poll_s: float, grace_s: float, signum: int, stop: Callable[[int], None]
) -> None:
    waiting = threading.Event()
    while os.getppid() == parent:
        waiting.wait(poll_s)
    logger.error("the server's arbiter (pid %d) is gone: this worker stops", parent)
    stop(signum)
    waiting.wait(grace_s)
    logger.error("this orphaned worker did not stop within %.0f s: killing it", grace_s)
    stop(signal.SIGKILL)
