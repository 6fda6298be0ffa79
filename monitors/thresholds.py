"""From a metric value to a status: an effect floor and, for drift metrics, a noise test.

A metric is at `warn` (`alert`) only when its value reaches the configured warn (alert) floor
**and** the two-sample test its measurement carries (`details.test`, `details.p_value`) rejects
"same distribution" at the configured false-alarm rate, divided by the number of keys judged
in the run (Bonferroni). Metrics without a test (failure rate, cost) are judged on the floor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.config import MonitorsConfig, Threshold
from core.contracts import Status
from monitors.distances import P_VALUE_KEY, TEST_KEY
from monitors.results import Measurement

CORRECTION = "bonferroni"
# The floor a test reports when it did not decide (see Verdict.details["decided_by"]).
EFFECT_FLOOR = "effect_floor"
_LEVELS: dict[Status, int] = {"ok": 0, "warn": 1, "alert": 2}


@dataclass(frozen=True)
class Verdict:
    """A metric's status, the threshold reported with it and how it was reached."""

    status: Status
    threshold: float | None
    details: dict[str, Any] = field(default_factory=dict)


def classify(value: float | None, threshold: Threshold | None) -> tuple[Status, float | None]:
    """Status of `value` (higher is worse) against the floors alone, and the floor reported."""
    if threshold is None:
        return "ok", None
    if value is None:
        return "insufficient_data", threshold.warn
    if value >= threshold.alert:
        return "alert", threshold.alert
    if value >= threshold.warn:
        return "warn", threshold.warn
    return "ok", threshold.warn


def judge(
    config: MonitorsConfig,
    monitor: str,
    metric: str,
    measurement: Measurement,
    sufficient: bool = True,
    *,
    keys: int = 1,
    model: str | None = None,
    tenant: str | None = None,
) -> Verdict:
    """The verdict on one key's measurement; `keys` is how many keys the run judges."""
    threshold = config.threshold(monitor, metric, model, tenant)
    if threshold is None:
        return Verdict("insufficient_data" if not sufficient else "ok", None)
    details: dict[str, Any] = {"thresholds": {"warn": threshold.warn, "alert": threshold.alert}}
    if not sufficient:
        return Verdict("insufficient_data", threshold.warn, details)
    effect, floor = classify(measurement.value, threshold)
    p_value = measurement.details.get(P_VALUE_KEY)
    if TEST_KEY not in measurement.details or p_value is None or effect not in _LEVELS:
        return Verdict(effect, floor, details)
    rates = config.false_alarms(model, tenant)
    judged = max(int(keys), 1)
    alpha = {"warn": rates.warn / judged, "alert": rates.alert / judged}
    status = significant_status(effect, float(p_value), alpha)
    details.update(
        alpha=alpha,
        keys_judged=judged,
        correction=CORRECTION,
        effect_status=effect,
        decided_by=EFFECT_FLOOR if status == effect else measurement.details[TEST_KEY],
    )
    return Verdict(status, _reported(status, threshold), details)


def significant_status(effect: Status, p_value: float, alpha: dict[str, float]) -> Status:
    """The highest level up to `effect` whose corrected rate the p-value is within."""
    if effect == "alert" and p_value <= alpha["alert"]:
        return "alert"
    if effect in ("alert", "warn") and p_value <= alpha["warn"]:
        return "warn"
    return "ok"


def _reported(status: Status, threshold: Threshold) -> float:
    """The floor a row reports: the one its status reached (warn for an `ok` row)."""
    return threshold.alert if status == "alert" else threshold.warn


def worst_status(statuses: Iterable[Status]) -> Status:
    """The highest of judged statuses (alert > warn > ok); `insufficient_data` if none judged."""
    judged = [s for s in statuses if s in _LEVELS]
    return max(judged, key=_LEVELS.__getitem__) if judged else "insufficient_data"
