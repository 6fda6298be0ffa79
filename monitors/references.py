"""What a window is compared with: each version's registered baseline, a reference window
(given, or the trailing hours before the window), or each key's first hours in production."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from core.config import MonitorsConfig
from core.contracts import ALL
from core.timeutil import Window
from monitors.aggregate_source import AggregateSource
from monitors.baselines import Baseline, BaselineStore, PeriodKey, ProductionCache
from monitors.histograms import FINE_EDGES, ConfidenceHistogram
from monitors.window_aggregates import (
    CLASS_COUNTS,
    AggregateKey,
    Key,
    ModelVersion,
    Request,
    WindowAggregates,
    histogram_key,
    keyed_counts,
    keyed_histograms,
)


class References(Protocol):
    """What a window is compared with."""

    source: str

    def first_requests(self) -> list[Request]:
        """Aggregates to ask for together with the window's first ones."""

    def grid_requests(self, grid: np.ndarray) -> list[Request]:
        """Aggregates to ask for once the confidence grid is known."""

    def quantile_edges(self, model_version: ModelVersion) -> np.ndarray | None: ...

    def confidence(self, key: Key, grid: np.ndarray) -> ConfidenceHistogram | None: ...

    def class_counts(self, key: Key) -> Mapping[str, float] | None: ...

    def classes(self, model_version: ModelVersion) -> Sequence[str]: ...

    def problem(self, key: Key) -> str: ...

    def source_for(self, key: Key) -> str:
        """The reference a key was compared with (results' `details.reference`)."""


@dataclass
class BaselineReferences:
    """Each model version's registered baseline (the same one for every tenant)."""

    store: BaselineStore
    source: str = "baseline"

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

    def source_for(self, key: Key) -> str:
        return self.source


@dataclass
class WindowReferences:
    """The same aggregates over a reference window, key by key (tenant by tenant)."""

    data: WindowAggregates
    source: str = "window"
    _on_grid: dict[AggregateKey, dict[Key, ConfidenceHistogram]] = field(default_factory=dict)

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

    def source_for(self, key: Key) -> str:
        return self.source


@dataclass
class ProductionReferences:
    """Each key's first `hours` in service: a tenant's own first hours on a version, and for all
    tenants the version's first hours. Until a key's period has ended before the window, the
    key is compared with the version's registered baseline instead."""

    predictions: AggregateSource
    window: Window
    hours: int
    store: BaselineStore
    model_name: str | None = None
    source: str = "production"

    @cached_property
    def fallback(self) -> BaselineReferences:
        return BaselineReferences(self.store)

    @property
    def cache(self) -> ProductionCache:
        return self.store.production

    @cached_property
    def periods(self) -> dict[Key, Window]:
        """Each key's production period (tenant `*`: from the version's first prediction)."""
        starts = serving_starts(self.predictions, self.cache, self.window.end)
        length = timedelta(hours=self.hours)
        periods = {}
        for (model, version, tenant), first in starts.items():
            if self.model_name is not None and model != self.model_name:
                continue
            periods[(model, version, tenant)] = Window(first, first + length)
            everyone = periods.get((model, version, ALL))
            if everyone is None or first < everyone.start:
                periods[(model, version, ALL)] = Window(first, first + length)
        return periods

    def ready(self, key: Key) -> Baseline | None:
        """The key's production reference, if its period ended before the window starts."""
        period = self.periods.get(key)
        if period is None or period.end > self.window.start:
            return None
        cache_key: PeriodKey = (*key, period.start, period.end)
        if cache_key not in self.cache.references:
            self._load_version((key[0], key[1]))
        return self.cache.references.get(cache_key)

    def _load_version(self, model_version: ModelVersion) -> None:
        """Read the references of every ended period of one version (four queries)."""
        ended = {
            key: period
            for key, period in self.periods.items()
            if (key[0], key[1]) == model_version and period.end <= self.window.start
        }
        for key, reference in production_references(self.predictions, ended).items():
            self.cache.references[(*key, ended[key].start, ended[key].end)] = reference

    def first_requests(self) -> list[Request]:
        return []

    def grid_requests(self, grid: np.ndarray) -> list[Request]:
        return []

    def quantile_edges(self, model_version: ModelVersion) -> np.ndarray | None:
        reference = self.ready((*model_version, ALL))
        if reference is None:
            return self.fallback.quantile_edges(model_version)
        return reference.quantile_edges

    def confidence(self, key: Key, grid: np.ndarray) -> ConfidenceHistogram | None:
        reference = self.ready(key)
        return self.fallback.confidence(key, grid) if reference is None else reference.confidence

    def class_counts(self, key: Key) -> Mapping[str, float] | None:
        reference = self.ready(key)
        return self.fallback.class_counts(key) if reference is None else reference.class_counts

    def classes(self, model_version: ModelVersion) -> Sequence[str]:
        return self.fallback.classes(model_version)

    def problem(self, key: Key) -> str:
        return f"{self._pending(key)}; {self.fallback.problem(key)}"

    def source_for(self, key: Key) -> str:
        if self.ready(key) is not None:
            return self.source
        return f"baseline ({self._pending(key)})"

    def _pending(self, key: Key) -> str:
        period = self.periods.get(key)
        if period is None:
            return f"no production reference for tenant {key[2]} yet"
        return f"production reference for tenant {key[2]} complete at {period.end.isoformat()}"


def serving_starts(
    source: AggregateSource, cache: ProductionCache, end: datetime
) -> dict[tuple[str, str, str], datetime]:
    """When each (model, version, tenant) first predicted before `end`, read incrementally."""
    if cache.scanned_until is None or end > cache.scanned_until:
        frame = source.first_predictions(cache.scanned_until, end)
        for model, version, tenant, first in frame.itertuples(index=False):
            key = (str(model), str(version), str(tenant))
            known = cache.starts.get(key)
            cache.starts[key] = first if known is None else min(known, first)
        cache.scanned_until = end
    return {key: first for key, first in cache.starts.items() if first < end}


def production_references(
    source: AggregateSource, periods: Mapping[Key, Window]
) -> dict[Key, Baseline]:
    """References (fine histogram, its deciles, class counts) of keys over their periods."""
    found: dict[Key, Baseline] = {}
    per_tenant = {k: p for k, p in periods.items() if k[2] != ALL}
    per_version = {k: p for k, p in periods.items() if k[2] == ALL}
    for chosen, all_tenants in ((per_tenant, False), (per_version, True)):
        if not chosen:
            continue
        bounds = [
            (k[0], k[1], None if all_tenants else k[2], p.start, p.end) for k, p in chosen.items()
        ]
        histograms = keyed_histograms(
            source.period_confidence_histogram(bounds, FINE_EDGES.tolist()), FINE_EDGES
        )
        classes = keyed_counts(source.period_class_counts(bounds), "predicted_class")
        for key in chosen:
            if key in histograms and key in classes:
                found[key] = Baseline(
                    key[0],
                    key[1],
                    histograms[key],
                    histograms[key].quantiles(),
                    {str(c): n for c, n in classes[key].items()},
                    source="production",
                )
    return found


def choose_references(
    source: AggregateSource,
    window: Window,
    config: MonitorsConfig,
    store: BaselineStore,
    reference_window: Window | None = None,
    model_name: str | None = None,
) -> References:
    """An explicit reference window, else what `config.reference` names."""
    if reference_window is None and config.reference == "window":
        hours = timedelta(hours=config.reference_window_hours)
        reference_window = Window(window.start - hours, window.start)
    if reference_window is not None:
        return WindowReferences(WindowAggregates(source, reference_window, model_name))
    if config.reference == "production":
        return ProductionReferences(
            source, window, config.production_reference_hours, store, model_name
        )
    return BaselineReferences(store)
