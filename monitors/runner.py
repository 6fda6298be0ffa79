"""Run monitors over a window: SQL aggregates in, contract rows out, stored in one transaction.

The per-key computations of each monitor live here with the run that orders them; the window's
aggregates are in monitors.window_aggregates and what they are compared with in
monitors.references.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

import numpy as np
import pandas as pd

from core.config import AppConfig
from core.contracts import ALL, MONITOR_NAMES
from core.timeutil import Window
from monitors import class_shift, cost, drift, schema_failures, traffic
from monitors.aggregate_source import AggregateSource, aggregate_source
from monitors.baselines import BaselineStore
from monitors.histograms import FINE_EDGES, normalize_edges
from monitors.references import References, choose_references
from monitors.results import Measurement, MonitorResult
from monitors.thresholds import judge
from monitors.traffic import HourlyHistory
from monitors.window_aggregates import (
    CLASS_COUNTS,
    COMPUTE_TOTALS,
    HOURLY_COUNTS,
    STATUS_COUNTS,
    Key,
    ModelVersion,
    Request,
    WindowAggregates,
    fetch_concurrently,
    histogram_key,
    keyed_counts,
    keyed_histograms,
)
from storage.engine import Engine

Progress = Callable[[str], None]


class UnknownModelError(LookupError):
    """A model filter names a model that is neither registered nor seen in the window."""


@dataclass
class RunOutcome:
    """Rows of one run, plus the cost frame behind the cost rows (for the exporter)."""

    window: Window
    results: list[MonitorResult] = field(default_factory=list)
    costs: pd.DataFrame | None = None


@dataclass
class MonitorRun:
    """One run of some monitors over one window."""

    source: AggregateSource
    window: Window
    config: AppConfig
    references: References
    model_name: str | None = None
    # Versions that get rows even in a window without their predictions (the registry's).
    registered: Sequence[ModelVersion] = ()
    # Hourly counts kept across runs (the scheduler's); None: asked of SQL for this run only.
    history: HourlyHistory | None = None
    reference_window: Window | None = None

    # Keys each drift monitor judges in this run: its tests' false-alarm rates are divided by it.
    keys_judged: dict[str, int] = field(default_factory=dict)

    @cached_property
    def current(self) -> WindowAggregates:
        return WindowAggregates(self.source, self.window, self.model_name)

    @property
    def cutoff(self) -> float:
        return self.config.monitors.low_confidence_cutoff

    @cached_property
    def quantiles(self) -> dict[ModelVersion, np.ndarray | None]:
        """The reference deciles of every model version with predictions in the window."""
        seen = self.current.class_counts
        versions = sorted(set(zip(seen["model_name"], seen["model_version"], strict=True)))
        return {mv: self.references.quantile_edges(mv) for mv in versions}

    @cached_property
    def confidence_grid(self) -> np.ndarray:
        """The fine edges and the low-confidence cutoff: every reference's deciles are snapped
        to the fine grid (drift.confidence_drift), so the grid is known before the window is
        read, and the rollups' fine bins answer it (a cutoff off the grid: raw rows)."""
        return normalize_edges(FINE_EDGES, [self.cutoff])

    @cached_property
    def traffic_reference(self) -> tuple[Window, dict[Key, dict[int, float]]]:
        """The span a key's usual traffic is measured over, and its hourly counts per key."""
        if self.reference_window is not None:
            data = WindowAggregates(self.source, self.reference_window, self.model_name)
            return self.reference_window, traffic.hourly_by_key(data.get((HOURLY_COUNTS,)))
        span = traffic.history_span(self.window, self.config.monitors.traffic.reference_hours)
        frame = (self.history or HourlyHistory(self.source)).counts(span)
        if self.model_name is not None:
            frame = frame[frame["model_name"] == self.model_name]
        return span, traffic.hourly_by_key(frame)

    @cached_property
    def expected_keys(self) -> frozenset[Key]:
        """Keys that get rows even when the window has none of their predictions.

        Every registered version (all tenants) and every key seen in the reference period:
        a tenant whose traffic stops keeps its rows, as `insufficient_data`, and the traffic
        monitor says how far it fell.
        """
        registered = {(model, version, ALL) for model, version in self.registered}
        return frozenset(registered | set(self.traffic_reference[1]))

    def keys(self, current: Iterable[Key]) -> list[Key]:
        """The keys with predictions in the window and the expected ones, sorted."""
        return sorted(set(current) | self.expected_keys)

    def absent(self, monitor: str, metrics: Sequence[str], key: Key) -> list[MonitorResult]:
        """`insufficient_data` rows of a key with no predictions in the window."""
        tenant = "any tenant" if key[2] == ALL else f"tenant {key[2]}"
        reason = f"no predictions of {key[0]} {key[1]} for {tenant} in the window"
        extra: dict[str, Any] = {"reason": reason, "current_n": 0}
        if monitor in (drift.MONITOR, class_shift.MONITOR):
            extra["reference"] = self.references.source
        return self.rows(monitor, key, 0, {}, metrics, False, extra)

    def prefetch(self, monitors: Iterable[str]) -> None:
        """Ask for every aggregate the monitors need, in as few rounds and as many at once."""
        wanted = set(monitors)
        compares = bool(wanted & {drift.MONITOR, class_shift.MONITOR})
        first: list[Request] = []
        if compares:
            first += [(self.current, (CLASS_COUNTS,)), *self.references.first_requests()]
        if wanted & {schema_failures.MONITOR, traffic.MONITOR}:
            first.append((self.current, (STATUS_COUNTS,)))
        if cost.MONITOR in wanted:
            first.append((self.current, (COMPUTE_TOTALS,)))
        if drift.MONITOR in wanted:
            grid = self.confidence_grid
            first += [(self.current, histogram_key(grid)), *self.references.grid_requests(grid)]
        fetch_concurrently(first)

    @property
    def min_predictions(self) -> int:
        return self.config.monitors.min_predictions

    def rows(
        self,
        monitor: str,
        key: Key,
        n: int,
        measurements: Mapping[str, Measurement],
        metrics: Iterable[str],
        sufficient: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> list[MonitorResult]:
        """Contract rows for one key, judged against the configured thresholds."""
        results = []
        for metric in metrics:
            measurement = measurements.get(metric, Measurement(None))
            verdict = judge(
                self.config.monitors,
                monitor,
                metric,
                measurement,
                sufficient,
                keys=self.keys_judged.get(monitor, 1),
                model=key[0],
                tenant=key[2],
            )
            status, threshold = verdict.status, verdict.threshold
            details = {**measurement.details, **(extra or {}), **verdict.details}
            results.append(
                MonitorResult(
                    monitor=monitor,
                    model_name=key[0],
                    model_version=key[1],
                    tenant=key[2],
                    window_start=self.window.start,
                    window_end=self.window.end,
                    metric=metric,
                    value=measurement.value if sufficient else None,
                    threshold=threshold,
                    status=status,
                    n=int(n),
                    details=details,
                )
            )
        return results

    def judged(self, sizes: Iterable[float]) -> int:
        """How many keys of these window sizes have enough predictions to be judged."""
        return max(sum(1 for n in sizes if n >= self.min_predictions), 1)

    def shortfall(self, n_current: float, n_reference: float | None) -> str | None:
        """Why a comparison would not be meaningful, or None."""
        if n_current < self.min_predictions:
            return f"{int(n_current)} predictions in the window, fewer than {self.min_predictions}"
        if n_reference is not None and n_reference < self.min_predictions:
            return f"{int(n_reference)} reference predictions, fewer than {self.min_predictions}"
        return None

    def compared(
        self,
        monitor: str,
        metrics: Sequence[str],
        key: Key,
        n: float,
        n_reference: float | None,
        compute: Callable[[], Mapping[str, Measurement]] | None = None,
    ) -> list[MonitorResult]:
        """Rows comparing a key with its reference: insufficient when a side is missing or small."""
        extra: dict[str, Any] = {"reference": self.references.source_for(key)}
        why = (
            self.references.problem(key) if n_reference is None else self.shortfall(n, n_reference)
        )
        if why is not None or compute is None:
            extra.update(reason=why, current_n=int(n))
            return self.rows(monitor, key, int(n), {}, metrics, False, extra)
        return self.rows(monitor, key, int(n), compute(), metrics, True, extra)

    def confidence_drift(self) -> list[MonitorResult]:
        quantiles, cutoff, grid = self.quantiles, self.cutoff, self.confidence_grid
        current = keyed_histograms(self.current.confidence(grid), grid)
        self.keys_judged[drift.MONITOR] = self.judged(h.n for h in current.values())
        results = []
        for key in self.keys(current):
            if key not in current:
                results += self.absent(drift.MONITOR, drift.METRICS, key)
                continue
            histogram, edges = current[key], quantiles.get((key[0], key[1]))
            reference = None if edges is None else self.references.confidence(key, grid)
            if reference is None or edges is None:
                results += self.compared(drift.MONITOR, drift.METRICS, key, histogram.n, None)
                continue
            compute = partial(drift.confidence_drift, reference, histogram, edges, cutoff)
            results += self.compared(
                drift.MONITOR, drift.METRICS, key, histogram.n, reference.n, compute
            )
        return results

    def class_shift(self) -> list[MonitorResult]:
        current = keyed_counts(self.current.class_counts, "predicted_class")
        self.keys_judged[class_shift.MONITOR] = self.judged(
            sum(c.values()) for c in current.values()
        )
        results = []
        for key in self.keys(current):
            if key not in current:
                results += self.absent(class_shift.MONITOR, class_shift.METRICS, key)
                continue
            counts = {str(c): n for c, n in current[key].items()}
            reference = self.references.class_counts(key)
            metrics, n = class_shift.METRICS, sum(counts.values())
            if reference is None:
                results += self.compared(class_shift.MONITOR, metrics, key, n, None)
                continue
            classes = self.references.classes((key[0], key[1]))
            compute = partial(class_shift.class_shift, reference, counts, classes)
            results += self.compared(
                class_shift.MONITOR, metrics, key, n, sum(reference.values()), compute
            )
        return results

    def schema_failures(self) -> list[MonitorResult]:
        current = keyed_counts(self.current.status_counts, "status")
        results = []
        for key in self.keys(current):
            if key not in current:
                results += self.absent(schema_failures.MONITOR, schema_failures.METRICS, key)
                continue
            statuses = {str(s): int(n) for s, n in current[key].items()}
            measurements = schema_failures.failure_rate(statuses)
            n = schema_failures.inference_count(statuses)
            why = self.shortfall(n, None)
            extra = {} if why is None else {"reason": why}
            results += self.rows(
                schema_failures.MONITOR,
                key,
                n,
                measurements,
                schema_failures.METRICS,
                why is None,
                extra,
            )
        return results

    def traffic(self) -> list[MonitorResult]:
        current = keyed_counts(self.current.status_counts, "status")
        span, usual_counts = self.traffic_reference
        source = "window" if self.reference_window is not None else "history"
        extra = {"reference": source, "reference_start": span.start, "reference_end": span.end}
        min_expected = self.config.monitors.traffic.min_expected
        results = []
        for key in self.keys(current):
            count = sum(current.get(key, {}).values())
            usual = traffic.usual_rate(usual_counts.get(key, {}), span.seconds)
            measurements = traffic.volume_drop(count, usual, self.window.seconds, min_expected)
            judged = all(m.value is not None for m in measurements.values())
            results += self.rows(
                traffic.MONITOR, key, int(count), measurements, traffic.METRICS, judged, extra
            )
        return results

    def cost(self) -> tuple[list[MonitorResult], pd.DataFrame]:
        costs = cost.compute_costs(
            self.current.compute_totals, self.config.pricing, self.window.seconds
        )
        capacity = cost.capacity_cost_usd(self.config.pricing, self.window.seconds)
        results = []
        for model, version, tenant, n, measurements in cost.cost_rows(costs):
            extra = {"window_capacity_cost_usd": capacity}
            results += self.rows(
                cost.MONITOR, (model, version, tenant), n, measurements, cost.METRICS, True, extra
            )
        return results, costs


def run_monitors(
    engine: Engine,
    window: Window,
    config: AppConfig,
    *,
    reference_window: Window | None = None,
    model_name: str | None = None,
    monitors: Sequence[str] = MONITOR_NAMES,
    baselines: BaselineStore | None = None,
    history: HourlyHistory | None = None,
    progress: Progress | None = None,
    source: AggregateSource | None = None,
) -> RunOutcome:
    """Compute the monitors' rows for `window` (reads only, but for folding the predictions
    not yet in the rollups into them).

    Keys without predictions in the window still get rows (`MonitorRun.expected_keys`);
    `history` keeps the traffic reference's hourly counts across runs. The predictions'
    aggregates come from `source` (default: `monitors.source` on `engine`, the rollups unless
    set to raw rows; `engine` always holds the baselines).
    """
    unknown = [m for m in monitors if m not in MONITOR_NAMES]
    if unknown:
        raise ValueError(f"unknown monitor(s) {', '.join(unknown)}; known: {MONITOR_NAMES}")
    store = baselines or BaselineStore(engine)
    source = source or aggregate_source(engine, config.monitors.source)
    references = choose_references(
        source, window, config.monitors, store, reference_window, model_name
    )
    run = MonitorRun(
        source,
        window,
        config,
        references,
        model_name,
        registered=store.registered_versions(model_name),
        history=history,
        reference_window=reference_window,
    )
    run.prefetch(monitors)
    if model_name is not None:
        _check_model(run, store, model_name)
    outcome = RunOutcome(window)
    for monitor in MONITOR_NAMES:
        if monitor not in monitors:
            continue
        if progress is not None:
            progress(monitor)
        if monitor == cost.MONITOR:
            rows, outcome.costs = run.cost()
        else:
            rows = getattr(run, monitor)()
        outcome.results.extend(rows)
    return outcome


def _check_model(run: MonitorRun, store: BaselineStore, model_name: str) -> None:
    fetched = [k for k in (COMPUTE_TOTALS, STATUS_COUNTS, CLASS_COUNTS) if run.current.has((k,))]
    seen = run.current.get((fetched[0] if fetched else STATUS_COUNTS,))
    if not seen.empty or store.is_registered(model_name):
        return
    raise UnknownModelError(
        f"unknown model {model_name!r}: not registered and no predictions in the window"
    )


def store_results(engine: Engine, outcome: RunOutcome, computed_at: datetime | None = None) -> None:
    """Upsert a run's rows in one transaction (a re-run of a window replaces its rows)."""
    from storage.writer import upsert_monitor_results

    stamp = computed_at or datetime.now(UTC)
    upsert_monitor_results(engine, [result.to_row(stamp) for result in outcome.results])
