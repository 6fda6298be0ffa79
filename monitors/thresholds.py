"""From a metric value to a status, with the configured warn/alert thresholds."""

from __future__ import annotations

from core.config import MonitorsConfig, Threshold
from core.contracts import Status
from monitors.results import Measurement


def classify(value: float | None, threshold: Threshold | None) -> tuple[Status, float | None]:
    """Status of `value` (higher is worse) and the threshold reported with it."""
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
) -> tuple[Status, float | None]:
    """Status and threshold of a measurement; too few predictions give `insufficient_data`."""
    threshold = config.threshold(monitor, metric)
    if not sufficient:
        return "insufficient_data", threshold.warn if threshold else None
    return classify(measurement.value, threshold)
