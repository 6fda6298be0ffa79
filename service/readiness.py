"""Start-up checks behind /readyz: each names what fails until all have passed once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

logger = logging.getLogger("servewatch.readiness")

# A check returns None when it passes, else a short reason; raising counts as failing.
Check = Callable[[], str | None]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class Readiness:
    """Runs the start-up checks; failing ones are retried at most every `retry_interval_s`.

    Once every start-up check has passed they stay passed: later store outages are absorbed by
    the prediction log's spill files, not by pulling the instance out of rotation. `live`
    checks (a model service that must answer) are re-run as often, passed or not.
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        live: Mapping[str, Check] | None = None,
        retry_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = frozenset(live or ())
        self._checks = {**checks, **(live or {})}
        self._retry_interval_s = retry_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._results: dict[str, CheckResult] = {}
        self._last_run: float | None = None

    @property
    def watching(self) -> bool:
        """Whether some check is re-run even once ready (evaluate on every probe)."""
        return bool(self._live)

    @property
    def ready(self) -> bool:
        return len(self._results) == len(self._checks) and all(r.ok for r in self._results.values())

    def results(self) -> list[CheckResult]:
        return [self._results[name] for name in self._checks if name in self._results]

    def evaluate(self) -> list[CheckResult]:
        """Re-run the failing checks if they are due; the results in check order."""
        with self._lock:
            now = self._clock()
            due = self._last_run is None or now - self._last_run >= self._retry_interval_s
            if due and (not self.ready or self._live):
                self._last_run = now
                for name, check in self._checks.items():
                    result = self._results.get(name)
                    if result is None or not result.ok or name in self._live:
                        self._results[name] = _run(name, check)
            return self.results()

    def failing(self) -> list[CheckResult]:
        return [r for r in self.results() if not r.ok]


def _run(name: str, check: Check) -> CheckResult:
    try:
        problem = check()
    except Exception as exc:  # a check that cannot run is a failing check, with its reason
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        logger.warning("readiness check %s fails: %s", name, problem)
        return CheckResult(name, False, problem)
    return CheckResult(name, True, "ok")
