"""Where the monitors' aggregates of `predictions` come from: the per-minute rollups, raw rows
in SQL, or another engine (Spark over a Parquet export, monitors.spark_aggregates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import pandas as pd

from core.config import AggregateSourceName
from core.timeutil import Window
from storage import aggregates, rollups
from storage.aggregates import Period
from storage.engine import Engine


class AggregateSource(Protocol):
    """The frames of `storage.aggregates` (same columns, same meaning) without the engine."""

    def expect(self, windows: Sequence[Window]) -> None:
        """The windows about to be asked for (an engine may answer them all in one pass)."""

    def class_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def status_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def confidence_histogram(
        self,
        start: datetime,
        end: datetime,
        edges: Sequence[float],
        model_name: str | None = None,
    ) -> pd.DataFrame: ...

    def hourly_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def first_predictions(
        self, start: datetime | None, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def period_class_counts(self, periods: Sequence[Period]) -> pd.DataFrame: ...

    def period_confidence_histogram(
        self, periods: Sequence[Period], edges: Sequence[float]
    ) -> pd.DataFrame: ...


class CostAggregates(Protocol):
    """What the FinOps report and the budget gauges read: compute sums per day, busy time per
    hour, the first prediction's day (SQL sources only: they have no Spark counterpart)."""

    def compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def daily_compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame: ...

    def hourly_busy_ms(self, start: datetime, end: datetime) -> pd.DataFrame: ...

    def first_prediction_day(self, before: datetime) -> date | None: ...


@dataclass(frozen=True)
class SqlAggregates:
    """The aggregates asked of the store in SQL (`storage.aggregates`)."""

    engine: Engine

    def expect(self, windows: Sequence[Window]) -> None:
        """Nothing to prepare: SQL answers each window when it is asked."""

    def class_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return aggregates.class_counts(self.engine, start, end, model_name)

    def status_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return aggregates.status_counts(self.engine, start, end, model_name)

    def compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return aggregates.compute_totals(self.engine, start, end, model_name)

    def confidence_histogram(
        self,
        start: datetime,
        end: datetime,
        edges: Sequence[float],
        model_name: str | None = None,
    ) -> pd.DataFrame:
        return aggregates.confidence_histogram(self.engine, start, end, edges, model_name)

    def hourly_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return aggregates.hourly_counts(self.engine, start, end, model_name)

    def first_predictions(
        self, start: datetime | None, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return aggregates.first_predictions(self.engine, start, end, model_name)

    def daily_compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return aggregates.daily_compute_totals(self.engine, start, end, model_name)

    def hourly_busy_ms(self, start: datetime, end: datetime) -> pd.DataFrame:
        return aggregates.hourly_busy_ms(self.engine, start, end)

    def first_prediction_day(self, before: datetime) -> date | None:
        return aggregates.first_prediction_day(self.engine, before)

    def period_class_counts(self, periods: Sequence[Period]) -> pd.DataFrame:
        return aggregates.period_class_counts(self.engine, periods)

    def period_confidence_histogram(
        self, periods: Sequence[Period], edges: Sequence[float]
    ) -> pd.DataFrame:
        return aggregates.period_confidence_histogram(self.engine, periods, edges)


@dataclass(frozen=True)
class RollupAggregates:
    """The aggregates read from the per-minute rollups (`storage.rollups`), folded up to date
    first: a window's cost follows its minutes and keys, not its predictions."""

    engine: Engine

    def expect(self, windows: Sequence[Window]) -> None:
        """Fold what is pending once, before the windows' queries run side by side."""
        rollups.fold_pending(self.engine)

    def _current(self) -> Engine:
        rollups.fold_pending(self.engine)
        return self.engine

    def class_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return rollups.class_counts(self._current(), start, end, model_name)

    def status_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return rollups.status_counts(self._current(), start, end, model_name)

    def compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return rollups.compute_totals(self._current(), start, end, model_name)

    def confidence_histogram(
        self,
        start: datetime,
        end: datetime,
        edges: Sequence[float],
        model_name: str | None = None,
    ) -> pd.DataFrame:
        return rollups.confidence_histogram(self._current(), start, end, edges, model_name)

    def hourly_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return rollups.hourly_counts(self._current(), start, end, model_name)

    def first_predictions(
        self, start: datetime | None, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return rollups.first_predictions(self._current(), start, end, model_name)

    def daily_compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        return rollups.daily_compute_totals(self._current(), start, end, model_name)

    def hourly_busy_ms(self, start: datetime, end: datetime) -> pd.DataFrame:
        return rollups.hourly_busy_ms(self._current(), start, end)

    def first_prediction_day(self, before: datetime) -> date | None:
        return rollups.first_prediction_day(self._current(), before)

    def period_class_counts(self, periods: Sequence[Period]) -> pd.DataFrame:
        return rollups.period_class_counts(self._current(), periods)

    def period_confidence_histogram(
        self, periods: Sequence[Period], edges: Sequence[float]
    ) -> pd.DataFrame:
        return rollups.period_confidence_histogram(self._current(), periods, edges)


def aggregate_source(engine: Engine, kind: AggregateSourceName) -> SqlAggregates | RollupAggregates:
    """The source `monitors.source` names: the rollups (the default) or raw rows (both are an
    AggregateSource and CostAggregates)."""
    return RollupAggregates(engine) if kind == "rollups" else SqlAggregates(engine)
