"""The monitors' aggregates computed by Apache Spark over a Parquet export of `predictions`
(storage.parquet_export), for backfills that outgrow one database.

Each method answers the frame of its namesake in storage.aggregates (same columns, same rows,
same bin and hour rules), so the monitors' pure functions turn either into the same results.
Spark runs in local mode (`local[2]`) or on a cluster (`spark://host:7077`, `yarn`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from pathlib import Path
from typing import cast

import pandas as pd
from pyspark.ml.feature import Bucketizer
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from core.timeutil import Window, epoch, to_utc
from storage.aggregates import (
    COMPUTE_SUMS,
    GROUP_COLUMNS,
    HOUR_SECONDS,
    KEY_COLUMNS,
    Period,
    check_edges,
)
from storage.parquet_export import exported_files

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The driver's log4j2 configuration: errors only, not Spark's start-up warnings.
QUIET_DRIVER = (
    f"-Dlog4j2.configurationFile={Path(__file__).with_name('spark-log4j2.properties').as_uri()}"
)
# An aggregate over rows, grouped by the given columns first (the window index, or none).
Build = Callable[[DataFrame, list[str]], DataFrame]


class NoExportError(FileNotFoundError):
    """The folder holds no Parquet export of predictions."""


def spark_session(
    master: str, app_name: str = "servewatch-backfill", conf: Mapping[str, str] | None = None
) -> SparkSession:
    """A Spark session on `master`: UTC, no web UI, no console progress, errors-only logs;
    `conf` adds or overrides Spark settings (its driver Java options come after the logs')."""
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Aggregates are O(groups x bins) rows: a few shuffle partitions are plenty.
        "spark.sql.shuffle.partitions": "4",
        **(conf or {}),
    }
    java_options = settings.get("spark.driver.extraJavaOptions", "")
    settings["spark.driver.extraJavaOptions"] = f"{QUIET_DRIVER} {java_options}".strip()
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class SparkAggregates:
    """storage.aggregates' frames, computed by Spark over the export under `path`."""

    spark: SparkSession
    path: Path
    _rows: DataFrame | None = field(default=None, repr=False)
    # Expected windows (start, end) by index, and their aggregates by name: frames by window
    # index, and the empty frame of a window without rows.
    _expected: dict[tuple[datetime, datetime], int] = field(default_factory=dict, repr=False)
    _memo: dict[tuple[object, ...], tuple[dict[int, pd.DataFrame], pd.DataFrame]] = field(
        default_factory=dict, repr=False
    )
    # Hourly counts by hour since the epoch, and the span (epoch seconds) and model they cover.
    _hours: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _hours_span: tuple[float, float, str | None] = field(default=(0.0, 0.0, None), repr=False)

    @property
    def rows(self) -> DataFrame:
        """Every exported prediction (read lazily; days outside a query are pruned)."""
        if self._rows is None:
            if not exported_files(self.path):
                raise NoExportError(
                    f"no Parquet export of predictions under {self.path}: "
                    "run `servewatch export parquet` first"
                )
            self._rows = self.spark.read.option("basePath", str(self.path)).parquet(str(self.path))
        return self._rows

    def _between(
        self, start: datetime | None, end: datetime, model_name: str | None = None
    ) -> DataFrame:
        """Rows with `start <= ts < end` (of `model_name`), reading only the days they are in."""
        if start is not None and end <= start:
            raise ValueError(f"empty or inverted window: start {start} is not before end {end}")
        condition = (F.col("day") <= F.lit(_last_day(end))) & (F.col("ts") < F.lit(to_utc(end)))
        if start is not None:
            condition &= F.col("day") >= F.lit(to_utc(start).date())
            condition &= F.col("ts") >= F.lit(to_utc(start))
        if model_name is not None:
            condition &= F.col("model_name") == model_name
        return self.rows.where(condition)

    def expect(self, windows: Sequence[Window]) -> None:
        """The windows about to be asked for: each aggregate of them all is one Spark job
        (forgets the aggregates of the windows expected before)."""
        self._expected = {(w.start, w.end): index for index, w in enumerate(windows)}
        self._memo.clear()

    def _per_window(
        self,
        name: tuple[object, ...],
        start: datetime,
        end: datetime,
        model_name: str | None,
        build: Build,
    ) -> pd.DataFrame:
        """`build`'s aggregate of one window: from the pass over every expected window when
        this is one of them, else from a job of its own."""
        window = (to_utc(start), to_utc(end))
        if window not in self._expected:
            return _pandas(build(self._between(start, end, model_name), []))
        key = (*name, model_name)
        if key not in self._memo:
            self._memo[key] = self._every_expected(model_name, build)
        frames, empty = self._memo[key]
        return frames.get(self._expected[window], empty)

    def _every_expected(
        self, model_name: str | None, build: Build
    ) -> tuple[dict[int, pd.DataFrame], pd.DataFrame]:
        """`build`'s aggregate of every expected window, in one pass: by window index, and an
        empty frame for windows without rows."""
        bounds = [(i, start, end) for (start, end), i in self._expected.items()]
        windows = self.spark.createDataFrame(bounds, "w long, w_start timestamp, w_end timestamp")
        first, last = min(b[1] for b in bounds), max(b[2] for b in bounds)
        inside = (F.col("ts") >= F.col("w_start")) & (F.col("ts") < F.col("w_end"))
        rows = self._between(first, last, model_name).join(F.broadcast(windows), inside)
        frame = _pandas(build(rows, ["w"]))
        frames = {
            int(w): group.drop(columns="w").reset_index(drop=True)
            for w, group in frame.groupby("w")
        }
        return frames, frame.drop(columns="w").iloc[0:0]

    def class_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        def build(rows: DataFrame, by: list[str]) -> DataFrame:
            ok = rows.where(F.col("status") == "ok")
            return _counts(ok, [*by, *GROUP_COLUMNS, "predicted_class"])

        frame = self._per_window(("class_counts",), start, end, model_name, build)
        return frame.astype({"n": "int64"})

    def status_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        def build(rows: DataFrame, by: list[str]) -> DataFrame:
            return _counts(rows, [*by, *GROUP_COLUMNS, "status"])

        frame = self._per_window(("status_counts",), start, end, model_name, build)
        return frame.astype({"n": "int64"})

    def confidence_histogram(
        self,
        start: datetime,
        end: datetime,
        edges: Sequence[float],
        model_name: str | None = None,
    ) -> pd.DataFrame:
        check_edges(edges)

        def build(rows: DataFrame, by: list[str]) -> DataFrame:
            return _histogram(rows, edges, [*by, *GROUP_COLUMNS])

        name = ("confidence_histogram", *(float(e) for e in edges))
        frame = self._per_window(name, start, end, model_name, build)
        return frame.astype({"bin": "int64", "n": "int64"})

    def compute_totals(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        def build(rows: DataFrame, by: list[str]) -> DataFrame:
            resource = F.coalesce(F.col("resource_class"), F.lit("cpu"))
            keys = [*by, *GROUP_COLUMNS, "resource_class"]
            rows = rows.withColumn("resource_class", resource)
            return rows.groupBy(*keys).agg(*_compute_sums()).select(*keys, *COMPUTE_SUMS)

        frame = self._per_window(("compute_totals",), start, end, model_name, build)
        types = {"n": "int64", "requests": "int64", "compute_ms": "float64", "busy_ms": "float64"}
        return frame.astype(types)

    def hourly_counts(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        """Whole-hour spans up to the last expected window (the traffic history of a backfill)
        are cut from one pass up to that window; any other span is a job of its own."""
        first, stop = epoch(start), epoch(end)
        horizon = max((e for _, e in self._expected), default=None)
        if first % HOUR_SECONDS or stop % HOUR_SECONDS or horizon is None or end > horizon:
            return self._hourly(start, end, model_name)
        low, high, model = self._hours_span
        if model != model_name or not low <= first < stop <= high:
            frame = self._hourly(start, horizon, model_name)
            frame["hour"] += int(first // HOUR_SECONDS)  # hours since the epoch
            self._hours, self._hours_span = frame, (first, epoch(horizon), model_name)
        hours = self._hours["hour"]
        wanted = (hours >= first // HOUR_SECONDS) & (hours < stop // HOUR_SECONDS)
        rows = self._hours[wanted].reset_index(drop=True)
        return rows.assign(hour=rows["hour"] - int(first // HOUR_SECONDS))

    def _hourly(
        self, start: datetime, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        origin = int(to_utc(start).timestamp())  # whole seconds, as in SQL
        hour = F.floor((F.unix_seconds(F.col("ts")) - origin) / HOUR_SECONDS).cast("long")
        rows = self._between(start, end, model_name).withColumn("hour", hour)
        frame = _pandas(_counts(rows, ["model_name", "model_version", "tenant", "hour"]))
        return frame.astype({"hour": "int64", "n": "int64"})

    def first_predictions(
        self, start: datetime | None, end: datetime, model_name: str | None = None
    ) -> pd.DataFrame:
        ok = self._between(start, end, model_name).where(F.col("status") == "ok")
        first = F.unix_micros(F.min(F.col("ts"))).alias("first_us")
        frame = _pandas(ok.groupBy(*KEY_COLUMNS).agg(first))
        frame["first_ts"] = [EPOCH + timedelta(microseconds=int(us)) for us in frame["first_us"]]
        return frame[[*KEY_COLUMNS, "first_ts"]]

    def period_class_counts(self, periods: Sequence[Period]) -> pd.DataFrame:
        frame = _pandas(_counts(self._in_periods(periods), [*KEY_COLUMNS, "predicted_class"]))
        return frame.astype({"n": "int64"})

    def period_confidence_histogram(
        self, periods: Sequence[Period], edges: Sequence[float]
    ) -> pd.DataFrame:
        check_edges(edges)
        frame = _pandas(_histogram(self._in_periods(periods), edges, KEY_COLUMNS))
        return frame.astype({"bin": "int64", "n": "int64"})

    def _in_periods(self, periods: Sequence[Period]) -> DataFrame:
        """Successful predictions of any period's key within that key's period."""
        if not periods:
            raise ValueError("at least one period is needed")
        first, last = min(p[3] for p in periods), max(p[4] for p in periods)
        terms = []
        for model, version, tenant, start, end in periods:
            term = (
                (F.col("model_name") == model)
                & (F.col("model_version") == version)
                & (F.col("ts") >= F.lit(to_utc(start)))
                & (F.col("ts") < F.lit(to_utc(end)))
            )
            terms.append(term if tenant is None else term & (F.col("tenant") == tenant))
        rows = self._between(first, last).where(F.col("status") == "ok")
        return rows.where(reduce(lambda a, b: a | b, terms))


def _last_day(end: datetime) -> date:
    """The last UTC day holding a moment before `end`."""
    return (to_utc(end) - timedelta(microseconds=1)).date()


def _pandas(rows: DataFrame) -> pd.DataFrame:
    """The (small) aggregate collected to the driver."""
    frame = cast(pd.DataFrame, rows.toPandas())
    return frame


def _counts(rows: DataFrame, keys: Sequence[str]) -> DataFrame:
    return rows.groupBy(*keys).agg(F.count(F.lit(1)).alias("n")).select(*keys, "n")


def _histogram(rows: DataFrame, edges: Sequence[float], keys: Sequence[str]) -> DataFrame:
    """Successful predictions per bin [edges[i], edges[i+1]); the last bin closed, ends clamped
    (the bin is the number of interior edges at or below the confidence, as in SQL)."""
    inner = [float(e) for e in edges[1:-1]]
    rows = rows.where((F.col("status") == "ok") & F.col("confidence").isNotNull())
    if inner:
        splits = [-math.inf, *inner, math.inf]
        rows = Bucketizer(splits=splits, inputCol="confidence", outputCol="bucket").transform(rows)
        rows = rows.withColumn("bin", F.col("bucket").cast("long"))
    else:
        rows = rows.withColumn("bin", F.lit(0).cast("long"))
    return _counts(rows, [*keys, "bin"])


def _compute_sums() -> list[Column]:
    """storage.aggregates' compute sums: a bulk request's later rows (`<id>:1`, ...) are not
    requests; a row without a busy time counts its inference time."""
    later_item = F.col("request_id").contains(":") & ~F.col("request_id").endswith(":0")
    busy = F.coalesce(F.col("busy_ms"), F.col("compute_ms"))
    return [
        F.count(F.lit(1)).alias("n"),
        F.coalesce(F.sum(F.when(later_item, 0).otherwise(1)), F.lit(0)).alias("requests"),
        F.coalesce(F.sum(F.col("compute_ms")), F.lit(0.0)).alias("compute_ms"),
        F.coalesce(F.sum(busy), F.lit(0.0)).alias("busy_ms"),
    ]
