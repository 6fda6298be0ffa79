"""Traffic: how far a key's predictions in a window fall below what its usual rate predicts.

A key's usual rate is the median of its hourly counts over the reference period (the hours
before the window, or a manual run's reference window), zero hours included, so a burst or a
short pause does not move it. `volume_drop = 1 - count / expected`, where `expected` is that
rate scaled to the window: 0 at the usual rate, 1 when nothing arrives, negative above it.
A key is judged only when `expected` is at least `min_expected`; below it a drop cannot be
told from counting noise, and the row is `insufficient_data` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.contracts import ALL, metric_names
from core.timeutil import Window, aligned_end
from monitors.aggregate_source import AggregateSource
from monitors.results import Measurement
from monitors.window_aggregates import Key
from storage import aggregates

MONITOR = "traffic"
METRICS = metric_names(MONITOR)
HOUR = aggregates.HOUR_SECONDS
COUNT_COLUMNS = ("model_name", "model_version", "tenant", "hour", "n")


@dataclass(frozen=True)
class UsualRate:
    """Predictions per hour a key usually gets, and over how many hours that was measured."""

    per_hour: float
    hours: int


def usual_rate(counts_by_hour: Mapping[int, float], reference_seconds: float) -> UsualRate:
    """Median hourly count over the reference's whole hours (hours without rows count as 0).

    A reference shorter than an hour is one bucket, its count scaled to an hour.
    """
    whole = int(reference_seconds // HOUR)
    if whole == 0:
        return UsualRate(float(counts_by_hour.get(0, 0.0)) * HOUR / reference_seconds, 1)
    counts = np.array([float(counts_by_hour.get(hour, 0.0)) for hour in range(whole)])
    return UsualRate(float(np.median(counts)), whole)


def volume_drop(
    count: float, usual: UsualRate, window_seconds: float, min_expected: float
) -> dict[str, Measurement]:
    """1 - count / expected (higher is worse); no value when `expected` is too small to tell."""
    expected = usual.per_hour * window_seconds / HOUR
    details = {
        "count": int(count),
        "expected": expected,
        "usual_hourly_rate": usual.per_hour,
        "reference_hours": usual.hours,
        "min_expected": min_expected,
    }
    if expected < min_expected:
        reason = (
            f"the usual rate ({usual.per_hour:.4g} an hour, median of {usual.hours} h) predicts "
            f"{expected:.4g} predictions in the window, fewer than {min_expected:g}: "
            "too few to tell a drop from noise"
        )
        return {"volume_drop": Measurement(None, {**details, "reason": reason})}
    return {"volume_drop": Measurement(1.0 - count / expected, details)}


def hourly_by_key(frame: pd.DataFrame) -> dict[Key, dict[int, float]]:
    """Counts per hour index per (model, version, tenant) and per (model, version, "*")."""
    result: dict[Key, dict[int, float]] = {}
    if frame.empty:
        return result
    per_tenant = frame.groupby(["model_name", "model_version", "tenant", "hour"])["n"].sum()
    all_tenants = frame.groupby(["model_name", "model_version", "hour"])["n"].sum()
    for (model, version, tenant, hour), n in per_tenant.items():
        result.setdefault((str(model), str(version), str(tenant)), {})[int(hour)] = float(n)
    for (model, version, hour), n in all_tenants.items():
        result.setdefault((str(model), str(version), ALL), {})[int(hour)] = float(n)
    return result


def history_span(window: Window, hours: int) -> Window:
    """The `hours` whole UTC hours before the hour in which `window` starts."""
    end = aligned_end(window.start.timestamp(), HOUR)
    return Window.ending_at(end, hours * HOUR)


@dataclass
class HourlyHistory:
    """Predictions per key and UTC hour, each closed hour asked of the source once and kept.

    The scheduler holds one across its runs, so a tick reads the hours that closed since the
    last one, not the whole reference period. Rows written into an hour after it was read (a
    journal replayed after a crash) are not seen: a median over days barely moves with them.
    """

    source: AggregateSource
    _hours: dict[int, pd.DataFrame] = field(default_factory=dict)

    def counts(self, span: Window) -> pd.DataFrame:
        """`aggregates.hourly_counts` over `span`, which must start and end on whole hours."""
        start, end = int(span.start.timestamp()), int(span.end.timestamp())
        if start % HOUR or end % HOUR:
            raise ValueError(f"{span} does not start and end on whole hours")
        wanted = range(start, end, HOUR)
        missing = [hour for hour in wanted if hour not in self._hours]
        if missing:
            self._fetch(Window.ending_at(end, end - missing[0]))
        for hour in [h for h in self._hours if h < start]:  # older than any later run needs
            del self._hours[hour]
        frames = [
            self._hours[hour].assign(hour=(hour - start) // HOUR)
            for hour in wanted
            if not self._hours[hour].empty
        ]
        if not frames:
            return pd.DataFrame(columns=list(COUNT_COLUMNS)).astype({"hour": "int64", "n": "int64"})
        return pd.concat(frames, ignore_index=True)[list(COUNT_COLUMNS)]

    def _fetch(self, span: Window) -> None:
        frame = self.source.hourly_counts(span.start, span.end)
        origin = int(span.start.timestamp())
        hours = math.ceil(span.seconds / HOUR)
        body = frame.drop(columns="hour")
        by_hour = {int(h): rows for h, rows in body.groupby(frame["hour"])}
        # One empty frame for every quiet hour: a week of hours is 168 frames to make otherwise.
        empty = body.iloc[0:0]
        for index in range(hours):
            rows = by_hour.get(index)
            kept = empty if rows is None else rows.reset_index(drop=True)
            self._hours[origin + index * HOUR] = kept
