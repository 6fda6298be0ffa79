"""A window's aggregates, each asked once, several at a time; and their per-key views."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from core.contracts import ALL
from core.timeutil import Window
from monitors.aggregate_source import AggregateSource
from monitors.histograms import ConfidenceHistogram

Key = tuple[str, str, str]  # model_name, model_version, tenant ("*" = all tenants)
ModelVersion = tuple[str, str]

CLASS_COUNTS, STATUS_COUNTS, COMPUTE_TOTALS = "class_counts", "status_counts", "compute_totals"
HISTOGRAM = "confidence_histogram"
HOURLY_COUNTS = "hourly_counts"  # a reference window's predictions per key and hour (traffic)
# Aggregates of a run are asked at once, each on its own connection, so the store can use all
# its cores; more would only queue on a small machine.
MAX_CONCURRENT_QUERIES = 4
AggregateKey = tuple[Any, ...]  # (CLASS_COUNTS,) or (HISTOGRAM, edges...)


class WindowAggregates:
    """The aggregates of one window, each asked of the source at most once."""

    def __init__(
        self, source: AggregateSource, window: Window, model_name: str | None = None
    ) -> None:
        self.source, self.window, self.model_name = source, window, model_name
        self._memo: dict[AggregateKey, pd.DataFrame] = {}

    def compute(self, key: AggregateKey) -> pd.DataFrame:
        """Ask the source for the aggregate named by `key` (uncached)."""
        start, end = self.window.start, self.window.end
        if key[0] == HISTOGRAM:
            return self.source.confidence_histogram(start, end, list(key[1:]), self.model_name)
        query = getattr(self.source, key[0])
        frame: pd.DataFrame = query(start, end, model_name=self.model_name)
        return frame

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
    """Ask for several aggregates at once (SQL: each on its own pooled connection)."""
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
