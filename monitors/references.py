"""What a window is compared with: each version's registered baseline, or a reference window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from core.contracts import ALL
from monitors.baselines import BaselineStore
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

# Up to this many registered versions, the window's histogram is asked for in the first round
# on a grid with all their deciles, before the versions in the window are known.
MAX_SPECULATIVE_VERSIONS = 32


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
