"""A model-service worker's rollout candidates, loaded ahead (split topology).

The gateway's rollout watch (service/rollout_watch.py) asks a model service to load a
candidate, and that call reaches one of its workers. So that no other worker loads it on its
first request (inside that request's deadline), every model-service worker polls the same
rollouts table on the same interval and loads each candidate of its own endpoints itself.

Importing it loads no settings and no BentoML.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from service.rollout_watch import POLL_INTERVAL_S
from storage.rollouts import Rollout

logger = logging.getLogger("servewatch.model_service")


class CandidatePreload:
    """Polls `read` (the rollouts in force) and calls `load(model, version)` for each
    candidate of `endpoints` until it returns True (loaded); failures are retried next poll."""

    def __init__(
        self,
        read: Callable[[], list[Rollout]],
        endpoints: Iterable[str],
        *,
        load: Callable[[str, str], bool],
        interval_s: float = POLL_INTERVAL_S,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._read = read
        self._release = release  # what `read` holds (its engine), let go at `close`
        self._endpoints = frozenset(endpoints)
        self._load = load
        self.interval_s = interval_s
        self._loaded: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store_down = False

    def poll(self) -> list[tuple[str, str]]:
        """Load the candidates in force of these endpoints; those loaded (empty when the store
        does not answer)."""
        try:
            in_force = self._read()
        except Exception as exc:  # any store failure: the first call loads a candidate then
            if not self._store_down:
                logger.warning("rollout state unreadable, candidates not loaded ahead: %s", exc)
            self._store_down = True
            return []
        self._store_down = False
        loaded = []
        for rollout in in_force:
            if self._endpoints.isdisjoint(rollout.endpoints):
                continue  # another model service runs it
            key = (rollout.candidate_model, rollout.candidate_version)
            if key in self._loaded or self._load(*key):
                self._loaded.add(key)
                loaded.append(key)
        return loaded

    def start(self) -> None:
        """Poll now, then every `interval_s` on a daemon thread until `close`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="candidate-preload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # a candidate that fails to load must not end the polls
                logger.exception("candidate preload failed")
            if self._stop.wait(self.interval_s):
                return

    def close(self) -> None:
        """Stop polling (waits up to 2 s for a poll in progress, as the rollout watch does)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._release is not None:
            self._release()
