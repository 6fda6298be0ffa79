"""A model-service worker's rollout candidates, loaded ahead (split topology).

The gateway's rollout watch (service/rollout_watch.py) asks a model service to load a
candidate, and that call reaches one of its workers. So that no other worker loads it on its
first request (inside that request's deadline), every model-service worker polls the same
rollouts table on the same interval and loads each candidate of its own endpoints itself.

Importing it loads no settings and no BentoML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from service.rollout_poller import POLL_INTERVAL_S, RolloutPoller
from storage.rollouts import Rollout

logger = logging.getLogger("servewatch.model_service")


class CandidatePreload(RolloutPoller):
    """Polls `read` (the rollouts in force) and calls `load(model, version)` for each
    candidate of `endpoints` until it returns True (loaded); failures are retried next poll."""

    thread_name = "candidate-preload"

    def __init__(
        self,
        read: Callable[[], list[Rollout]],
        endpoints: Iterable[str],
        *,
        load: Callable[[str, str], bool],
        interval_s: float = POLL_INTERVAL_S,
        release: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(read, logger, interval_s)
        self._release = release  # what `read` holds (its engine), let go at `close`
        self._endpoints = frozenset(endpoints)
        self._load = load
        self._loaded: set[tuple[str, str]] = set()

    def poll(self) -> list[tuple[str, str]]:
        """Load the candidates in force of these endpoints; those loaded (empty when the store
        does not answer)."""
        # A store that does not answer: the first call loads a candidate then.
        in_force = self._in_force("candidates not loaded ahead")
        if in_force is None:
            return []
        loaded = []
        for rollout in in_force:
            if self._endpoints.isdisjoint(rollout.endpoints):
                continue  # another model service runs it
            key = (rollout.candidate_model, rollout.candidate_version)
            if key in self._loaded or self._load(*key):
                self._loaded.add(key)
                loaded.append(key)
        return loaded

    def close(self) -> None:
        """Stop polling, then let go of what `read` holds."""
        super().close()
        if self._release is not None:
            self._release()
