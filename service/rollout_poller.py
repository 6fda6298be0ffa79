"""A background thread that reads the rollouts in force every couple of seconds (never on the
request path); a store that does not answer is logged once, until it answers again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from service.background import yield_to_requests
from storage.rollouts import Rollout

POLL_INTERVAL_S = 2.0


class RolloutPoller:
    """Calls `poll` now and every `interval_s` on a daemon thread, from `start` until `close`."""

    thread_name = "rollout-poller"

    def __init__(
        self,
        read: Callable[[], list[Rollout]],
        logger: logging.Logger,
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._read = read
        self._logger = logger
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store_down = False

    def poll(self) -> object:
        raise NotImplementedError

    def _in_force(self, unread: str) -> list[Rollout] | None:
        """The rollouts in force; None when the store does not answer (`unread` says what
        follows, logged once)."""
        try:
            in_force = self._read()
        except Exception as exc:  # any store failure: the caller keeps what it has
            if not self._store_down:
                self._logger.warning("rollout state unreadable, %s: %s", unread, exc)
            self._store_down = True
            return None
        self._store_down = False
        return in_force

    def start(self) -> None:
        """Poll now, then every `interval_s` on a daemon thread until `close`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        yield_to_requests()  # a poll (or a candidate's loading) waits for the event loop's turn
        while True:
            try:
                self.poll()
            except Exception:  # a candidate that fails to load must not end the polls
                self._logger.exception("rollout poll failed")
            if self._stop.wait(self.interval_s):
                return

    def close(self) -> None:
        """Stop polling: waits up to 2 s for a poll in progress, then leaves the daemon thread
        (a poll hanging on a dead store must not hold up the worker's shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
