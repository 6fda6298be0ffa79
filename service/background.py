"""Background threads of a worker (the prediction log's writer, the rollout polls) give way to
its event loop: their work is never urgent, and the loop's is every request in flight."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("servewatch.service")


def yield_to_requests() -> None:
    """Run the calling thread as a batch thread: when it wakes it waits for the running thread's
    time slice to end instead of preempting it. The writer preempting the event loop delayed
    every request in flight (throughput ratio 0.939 -> 0.959, p99 ratio 1.092 -> 1.059;
    docs/benchmarks.md, session 11). Linux only; elsewhere a no-op."""
    if not hasattr(os, "SCHED_BATCH"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:  # a sandbox that forbids it: the thread runs as before
        logger.info("background thread stays in the default scheduling class: %s", exc)
