"""Run monitors over a window: SQL aggregates in, contract rows out, stored in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.config import AppConfig, PricingConfig
from core.contracts import ALL, MONITOR_NAMES
from core.timeutil import Window, to_utc, week_start
from monitors import class_shift, cost, drift, schema_failures
from monitors.baselines import BaselineStore
from monitors.histograms import FINE_EDGES, ConfidenceHistogram, normalize_edges
from monitors.results import Measurement, MonitorResult
from monitors.thresholds import judge
from storage import aggregates
from storage.engine import Engine

Key = tuple[str, str, str]  # model_name, model_version, tenant ("*" = all tenants)
ModelVersion = tuple[str, str]
Progress = Callable[[str], None]


class UnknownModelError(LookupError):
    """A model filter names a model that is neither registered nor seen in the window."""


CLASS_COUNTS, STATUS_COUNTS, COMPUTE_TOTALS = "class_counts", "status_counts", "compute_totals"
HISTOGRAM = "confidence_histogram"
# Aggregates of a run are asked at once, each on its own connection, so the store can use all
# its cores; more would only queue on a small machine.
MAX_CONCURRENT_QUERIES = 4
AggregateKey = tuple[Any, ...]  # (CLASS_COUNTS,) or (HISTOGRAM, edges...)
# Up to this many registered versions, the window's histogram is asked for in the first round
# on a grid with all their deciles, before the versions in the window are known.
MAX_SPECULATIVE_VERSIONS = 32


class WindowAggregates:
    """The SQL aggregates of one window, each asked at most once."""

    def __init__(self, engine: Engine, window: Window, model_name: str | None = None) -> None:
        self.engine, self.window, self.model_name = engine, window, model_name
        self._memo: dict[AggregateKey, pd.DataFrame] = {}

    def compute(self, key: AggregateKey) -> pd.DataFrame:
        """Ask SQL for the aggregate named by `key` (uncached)."""
        args = (self.engine, self.window.start, self.window.end)
        if key[0] == HISTOGRAM:
            return aggregates.confidence_histogram(*args, list(key[1:]), model_name=self.model_name)
        query = getattr(aggregates, key[0])
        return query(*args, model_name=self.model_name)

    def get(self, key: AggregateKey) -> pd.DataFrame:
        if key not in self._memo:
            self._memo[key] = self.compute(key)
        return self._memo[key]

    def has(self, key: AggregateKey) -> bool:
        return key in self._memo

    def remember(self, key: AggregateKey, frame: pd.DataFrame) -> None:
        self._memo[key] = frame

    @property
    def class_counts(self) -> pd.DataFrame:
        return self.get((CLASS_COUNTS,))

    @property
    def status_counts(self) -> pd.DataFrame:
        return self.get((STATUS_COUNTS,))

    @property
    def compute_totals(self) -> pd.DataFrame:
        return self.get((COMPUTE_TOTALS,))

    def confidence(self, edges: np.ndarray) -> pd.DataFrame:
        return self.get(histogram_key(edges))


def histogram_key(edges: Iterable[float]) -> AggregateKey:
    return (HISTOGRAM, *(float(e) for e in edges))


Request = tuple[WindowAggregates, AggregateKey]


def fetch_concurrently(requests: Iterable[Request]) -> None:
    """Ask SQL for several aggregates at once, each on its own pooled connection."""
    unique = {(id(data), key): (data, key) for data, key in requests}
    missing = [(data, key) for data, key in unique.values() if not data.has(key)]
    if len(missing) < 2:
        for data, key in missing:
            data.get(key)
        return
    with ThreadPoolExecutor(max_workers=min(len(missing), MAX_CONCURRENT_QUERIES)) as pool:
        futures = [(data, key, pool.submit(data.compute, key)) for data, key in missing]
        for data, key, future in futures:
            data.remember(key, future.result())


def keyed_counts(frame: pd.DataFrame, column: str) -> dict[Key, dict[Any, float]]:
    """Counts of `column` values per (model, version, tenant) and per (model, version, "*")."""
    result: dict[Key, dict[Any, float]] = {}
    if frame.empty:
        return result
    per_tenant = frame.groupby(["model_name", "model_version", "tenant", column])["n"].sum()
    all_tenants = frame.groupby(["model_name", "model_version", column])["n"].sum()
    for (model, version, tenant, value), n in per_tenant.items():
        result.setdefault((str(model), str(version), str(tenant)), {})[value] = float(n)
    for (model, version, value), n in all_tenants.items():
        result.setdefault((str(model), str(version), ALL), {})[value] = float(n)
    return result


def keyed_histograms(frame: pd.DataFrame, edges: np.ndarray) -> dict[Key, ConfidenceHistogram]:
    """Confidence histograms over `edges` per key, from the `bin` / `n` aggregate."""
    bins = len(edges) - 1
    histograms = {}
    for key, counts in keyed_counts(frame, "bin").items():
        array = np.zeros(bins)
        for index, n in counts.items():
            array[int(index)] += n
        histograms[key] = ConfidenceHistogram(edges, array)
    return histograms


class References(Protocol):
    """What a window is compared with."""

    source: str

    def known_quantile_edges(self, model_name: str | None) -> list[np.ndarray] | None:
        """Quantile edges known before the window is read (None: they depend on it)."""

    def first_requests(self) -> list[Request]:
        """Aggregates to ask for together with the window's first ones."""

    def grid_requests(self, grid: np.ndarray) -> list[Request]:
        """Aggregates to ask for once the confidence grid is known."""

    def quantile_edges(self, model_version: ModelVersion) -> np.ndarray | None: ...

    def confidence(self, key: Key, grid: np.ndarray) -> ConfidenceHistogram | None: ...

    def class_counts(self, key: Key) -> Mapping[str, float] | None: ...

    def classes(self, model_version: ModelVersion) -> Sequence[str]: ...

    def problem(self, key: Key) -> str: ...


@dataclass
class BaselineReferences:
    """Each model version's registered baseline (the same one for every tenant)."""

    store: BaselineStore
    source: str = "baseline"

    def known_quantile_edges(self, model_name: str | None) -> list[np.ndarray] | None:
        versions = self.store.registered_versions(model_name)
        if len(versions) > MAX_SPECULATIVE_VERSIONS:
            return None  # a grid with every version's deciles would outgrow the saved round trip
        baselines = [self.store.get(*version) for version in versions]
        return [b.quantile_edges for b in baselines if b is not None]

    def first_requests(self) -> list[Request]:
        return []

    def grid_requests(self, grid: np.ndarray) -> list[Request]:
        return []

    def quantile_edges(self, model_version: ModelVersion) -> np.ndarray | None:
        baseline = self.store.get(*model_version)
        return None if baseline is None else baseline.quantile_edges

    def confidence(self, key: Key, grid: np.ndarray) -> ConfidenceHistogram | None:
        baseline = self.store.get(key[0], key[1])
        return None if baseline is None else baseline.confidence

    def class_counts(self, key: Key) -> Mapping[str, float] | None:
        baseline = self.store.get(key[0], key[1])
        return None if baseline is None else baseline.class_counts

    def classes(self, model_version: ModelVersion) -> Sequence[str]:
        baseline = self.store.get(*model_version)
        return () if baseline is None else baseline.classes

    def problem(self, key: Key) -> str:
        reason = self.store.problems.get((key[0], key[1]), "unavailable")
        return f"no baseline for {key[0]} {key[1]}: {reason}"


@dataclass
class WindowReferences:
    """The same aggregates over a reference window, key by key (tenant by tenant)."""

    data: WindowAggregates
    source: str = "window"
    _on_grid: dict[AggregateKey, dict[Key, ConfidenceHistogram]] = field(default_factory=dict)

    def known_quantile_edges(self, model_name: str | None) -> list[np.ndarray] | None:
        return None

    def first_requests(self) -> list[Request]:
        return [(self.data, histogram_key(FINE_EDGES)), (self.data, (CLASS_COUNTS,))]

    def grid_requests(self, grid: np.ndarray) -> list[Request]:
        return [(self.data, histogram_key(grid))]

    @cached_property
    def _fine(self) -> dict[Key, ConfidenceHistogram]:
        return keyed_histograms(self.data.confidence(FINE_EDGES), FINE_EDGES)

    @cached_property
    def _classes(self) -> dict[Key, dict[Any, float]]:
        return keyed_counts(self.data.class_counts, "predicted_class")

    def quantile_edges(self, model_version: ModelVersion) -> np.ndarray | None:
        histogram = self._fine.get((*model_version, ALL))
        return None if histogram is None else histogram.quantiles()

    def confidence(self, key: Key, grid: np.ndarray) -> ConfidenceHistogram | None:
        cache_key = histogram_key(grid)
        if cache_key not in self._on_grid:
            self._on_grid[cache_key] = keyed_histograms(self.data.confidence(grid), grid)
        return self._on_grid[cache_key].get(key)

    def class_counts(self, key: Key) -> Mapping[str, float] | None:
        return self._classes.get(key)

    def classes(self, model_version: ModelVersion) -> Sequence[str]:
        return ()

    def problem(self, key: Key) -> str:
        window = self.data.window
        return (
            f"no predictions of {key[0]} {key[1]} for tenant {key[2]} in the reference window "
            f"{window.start.isoformat()} .. {window.end.isoformat()}"
        )


@dataclass
class RunOutcome:
    """Rows of one run, plus the cost frame behind the cost rows (for the exporter)."""

    window: Window
    results: list[MonitorResult] = field(default_factory=list)
    costs: pd.DataFrame | None = None


@dataclass
class MonitorRun:
    """One run of some monitors over one window."""

    engine: Engine
    window: Window
    config: AppConfig
    references: References
    model_name: str | None = None

    speculative_grid: np.ndarray | None = None

    @cached_property
    def current(self) -> WindowAggregates:
        return WindowAggregates(self.engine, self.window, self.model_name)

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
        """Fine edges, the deciles of every reference in play and the low-confidence cutoff."""
        needed = normalize_edges(
            FINE_EDGES, *[q for q in self.quantiles.values() if q is not None], [self.cutoff]
        )
        speculative = self.speculative_grid
        if speculative is not None and np.isin(needed, speculative).all():
            return speculative  # asked for before the window's versions were known
        return needed

    def prefetch(self, monitors: Iterable[str]) -> None:
        """Ask SQL for every aggregate the monitors need, as few rounds and as many at once."""
        wanted = set(monitors)
        compares = bool(wanted & {drift.MONITOR, class_shift.MONITOR})
        first: list[Request] = []
        if compares:
            first += [(self.current, (CLASS_COUNTS,)), *self.references.first_requests()]
        if schema_failures.MONITOR in wanted:
            first.append((self.current, (STATUS_COUNTS,)))
        if cost.MONITOR in wanted:
            first.append((self.current, (COMPUTE_TOTALS,)))
        if drift.MONITOR in wanted:
            known = self.references.known_quantile_edges(self.model_name)
            if known is not None:
                self.speculative_grid = normalize_edges(FINE_EDGES, *known, [self.cutoff])
                first.append((self.current, histogram_key(self.speculative_grid)))
        fetch_concurrently(first)
        if drift.MONITOR in wanted:
            grid = self.confidence_grid
            fetch_concurrently(
                [(self.current, histogram_key(grid)), *self.references.grid_requests(grid)]
            )

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
            status, threshold = judge(
                self.config.monitors, monitor, metric, measurement, sufficient
            )
            details = {**measurement.details, **(extra or {})}
            configured = self.config.monitors.threshold(monitor, metric)
            if configured is not None:
                details["thresholds"] = {"warn": configured.warn, "alert": configured.alert}
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
        extra: dict[str, Any] = {"reference": self.references.source}
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
        results = []
        for key in sorted(current):
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
        results = []
        for key in sorted(current):
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
        for key in sorted(current):
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
    progress: Progress | None = None,
) -> RunOutcome:
    """Compute the monitors' rows for `window` (reads only)."""
    unknown = [m for m in monitors if m not in MONITOR_NAMES]
    if unknown:
        raise ValueError(f"unknown monitor(s) {', '.join(unknown)}; known: {MONITOR_NAMES}")
    store = baselines or BaselineStore(engine)
    references: References = (
        BaselineReferences(store)
        if reference_window is None
        else WindowReferences(WindowAggregates(engine, reference_window, model_name))
    )
    run = MonitorRun(engine, window, config, references, model_name)
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


def tenant_week_costs(engine: Engine, now: datetime, pricing: PricingConfig) -> dict[str, float]:
    """Cost of the ISO week so far per tenant (attributed plus idle share).

    Each UTC day is its own capacity period, as in the weekly FinOps report, so the budget gauge
    and the report agree; today counts only the seconds that have passed.
    """
    start = week_start(now)
    if now <= start:
        return {}
    today = to_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    frames = []
    if today > start:
        days = aggregates.daily_compute_totals(engine, start, today)
        frames.append(cost.compute_costs(days, pricing, 86_400, by=["day"]))
    if now > today:
        partial = aggregates.compute_totals(engine, today, now)
        frames.append(cost.compute_costs(partial, pricing, (now - today).total_seconds()))
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return {}
    costs = pd.concat(frames)
    return {str(t): float(v) for t, v in costs.groupby("tenant")["total_cost_usd"].sum().items()}
