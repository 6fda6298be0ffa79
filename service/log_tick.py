"""One journal write per event-loop tick: the records of every answer finished in a tick reach
the kernel together, before any of those answers' bodies is sent.

The requests of one inference batch finish in the same tick. Each used to make its rows,
encode them, `write` them and queue them on its own, and in the live worker that once-a-request
path cost ~30 µs of the loop's CPU where the same calls in a tight loop take ~3 µs
(docs/benchmarks.md, session 10). Now a request only leaves what its rows are made from; a
callback that `call_soon` schedules for the next turn of the loop makes the rows of all of them,
journals them with one `write`, queues them as one entry, then releases the waiting answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from service.log_buffer import Row
from service.prediction_log import Answered, PredictionLog

log = logging.getLogger("service.prediction_log")


class TickJournal:
    """Gathers the answered requests of one event-loop tick for `submit_journaled_many`:
    `make(*args)` gives a request's rows, `fill(rows, *args)` completes them on the writer.
    Not thread-safe: one thread (the worker's event loop) submits."""

    def __init__(
        self,
        log: PredictionLog,
        make: Callable[..., list[Row]],
        fill: Callable[..., None] | None = None,
    ) -> None:
        self._log = log
        self._make = make
        self._fill = fill
        self._pending: list[tuple[Any, ...]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop a write is due on

    def submit(self, *args: Any) -> asyncio.Future[None] | None:
        """Journal the request's rows at the end of this tick; the future is done once they
        are written. Off an event loop they are written at once (None: nothing to wait for)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append(args)
            self.flush()
            return None
        if self._loop is not loop:
            if self._loop is not None:  # a write due on a loop that stopped before it ran
                self.flush()
            self._loop = loop
            loop.call_soon(self.flush)
        self._pending.append(args)
        # A future per answer: cancelling one request must not cancel the others' wait.
        waiting = loop.create_future()
        self._waiting.append(waiting)
        return waiting

    def flush(self) -> None:
        """Make and write what this tick gathered (one `write`), then release its answers."""
        pending, waiting = self._pending, self._waiting
        self._pending, self._waiting, self._loop = [], [], None
        try:
            answers: list[Answered] = []
            fill = self._fill
            for args in pending:
                try:
                    # Without a fill the arguments (the request's trace) are not kept, so the
                    # trace is freed with its request instead of living on in the queue.
                    answers.append((self._make(*args), fill, args if fill is not None else ()))
                except Exception:  # a bug: this answer goes out unrecorded, loudly
                    log.exception("prediction log: could not make the records of an answer")
            if answers:
                self._log.submit_journaled_many(answers)
        except Exception:  # a bug: the answers go out, their records are lost, loudly
            log.exception("prediction log: could not journal %d answers", len(pending))
        finally:
            for future in waiting:
                if not future.done():
                    # A loop closed before its tick ended has nobody waiting any more.
                    with contextlib.suppress(RuntimeError):
                        future.set_result(None)
