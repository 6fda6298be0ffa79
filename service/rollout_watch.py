"""The worker's view of the canary rollouts in force: read from the store every couple of
seconds on a background thread (never on the request path) and handed to the router.

A store that does not answer leaves the last splits in force. A candidate is loaded the first
time its rollout is seen; until it is loaded (or when it cannot be) its baseline serves.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping

from core.config import ModelRef
from service.rollout_poller import POLL_INTERVAL_S, RolloutPoller
from service.routing import Router, Split
from storage.rollouts import Rollout

logger = logging.getLogger("servewatch.rollouts")

# (endpoint, model, version, role) -> percent of the baseline's traffic that version takes;
# role is `candidate` or `baseline` (the dashboards and alerts put one beside the other).
Weights = Mapping[tuple[str, str, str, str], float]


class RolloutWatch(RolloutPoller):
    """Polls `read` (the rollouts in force) and applies them to `router`.

    `load(model, version)` makes the candidate servable (True) or says it cannot be (False);
    `baselines(endpoint, model, version)` names the route references serving a version;
    `export` receives the weights in force after every successful poll.
    """

    thread_name = "rollout-watch"

    def __init__(
        self,
        read: Callable[[], list[Rollout]],
        router: Router,
        *,
        load: Callable[[str, str], bool],
        baselines: Callable[[str, str, str], frozenset[tuple[str, str]]],
        export: Callable[[Weights], None],
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        super().__init__(read, logger, interval_s)
        self._router = router
        self._load = load
        self._baselines = baselines
        self._export = export

    def poll(self) -> bool:
        """Read the rollouts in force and apply them; False (nothing changed) when the store
        does not answer."""
        in_force = self._in_force("keeping the last one")
        if in_force is None:
            return False
        splits: dict[str, Split] = {}
        weights: dict[tuple[str, str, str, str], float] = {}
        for rollout in in_force:
            if not self._load(rollout.candidate_model, rollout.candidate_version):
                continue  # the baseline keeps serving
            for endpoint in rollout.endpoints:
                splits[endpoint] = self._split(rollout, endpoint)
                candidate = (endpoint, rollout.candidate_model, rollout.candidate_version)
                baseline = (endpoint, rollout.baseline_model, rollout.baseline_version)
                weights[(*candidate, "candidate")] = rollout.weight
                weights[(*baseline, "baseline")] = 100.0 - rollout.weight
        self._router.set_splits(splits)
        self._export(weights)
        return True

    def _split(self, rollout: Rollout, endpoint: str) -> Split:
        return Split.of(
            self._baselines(endpoint, rollout.baseline_model, rollout.baseline_version),
            ModelRef(model=rollout.candidate_model, version=rollout.candidate_version),
            rollout.weight,
            salt=zlib.crc32(str(rollout.id).encode()),
            sticky=rollout.mode == "sticky",
            tenant=rollout.tenant,
            region=rollout.region,
        )
