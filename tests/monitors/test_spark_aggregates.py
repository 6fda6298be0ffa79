"""Spark over the Parquet export answers what SQL answers: each aggregate frame, and the monitor
results of a backfill (counts equal, values within 1e-9), with every kind of reference.

Spark runs in local mode, one session for the file; PySpark and Java are required under CI.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.config import AppConfig, MonitorSchedule, MonitorsConfig, TrafficConfig
from core.contracts import MONITOR_NAMES
from core.timeutil import Window
from monitors.aggregate_source import SqlAggregates
from monitors.backfill import backfill, plan
from monitors.baselines import BaselineStore
from monitors.histograms import FINE_EDGES
from storage.engine import Engine, create_store_engine
from storage.migrate import upgrade
from storage.parquet_export import export_parquet
from tests.conftest import POSTGRES_URL, require, spark_available
from tests.monitors import traffic
from tests.support.scratch import scratch_schema

T0 = traffic.T0
SPAN = Window(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
HOURLY = MonitorSchedule(every_seconds=3600, window_seconds=3600)
HALF_HOURLY = MonitorSchedule(every_seconds=1800, window_seconds=1800)
SCHEDULES = {m: HALF_HOURLY if m == "cost" else HOURLY for m in MONITOR_NAMES}
TOLERANCE = 1e-9
# Thousands of rows, dozens of short jobs: a JVM that compiles less and plans once is faster.
SMALL_DATA = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
}


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    require(spark_available(), "PySpark with a Java runtime is not available")
    from monitors.spark_aggregates import spark_session

    session = spark_session("local[2]", app_name="servewatch-tests", conf=SMALL_DATA)
    yield session
    session.stop()


def _records() -> list[dict[str, Any]]:
    """Three tenants over two hours (initech thin in the second), errors, a second version sent
    as bulk requests, rows with and without busy time and resource class, and rows outside."""
    v2 = traffic.records("acme", 400, T0, version="v2", error_rate=0.1, seed=5)
    for i, row in enumerate(v2):
        row["request_id"] = f"bulk-{i // 4}:{i % 4}"
        row["busy_ms"] = 1.0 + (i % 5) * 0.125 if i % 3 else None
        row["resource_class"] = None if i % 2 else "gpu"
    late = traffic.records("globex", 50, SPAN.end, seed=7)  # after the span: never counted
    early = traffic.records("acme", 20, SPAN.start - timedelta(hours=1), seed=8)
    return [*traffic.previous_traffic(), *traffic.window_traffic(), *v2, *late, *early]


def _seed_and_export(url: str, folder: Path) -> Engine:
    """Seed the store at `url` and export the span (and the hour before) under `folder`."""
    engine = create_store_engine(url)
    traffic.register_baseline(engine)
    traffic.load(engine, _records())
    export_parquet(engine, Window(SPAN.start - timedelta(hours=1), SPAN.end), folder)
    return engine


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Path]]:
    """A seeded SQLite store and its export."""
    folder = tmp_path_factory.mktemp("spark")
    url = f"sqlite:///{folder / 'store.db'}"
    upgrade(url)
    engine = _seed_and_export(url, folder / "parquet")
    yield engine, folder / "parquet"
    engine.dispose()


@pytest.fixture(scope="module")
def on_spark(spark: Any, exported: tuple[Engine, Path]) -> Any:
    from monitors.spark_aggregates import SparkAggregates

    return SparkAggregates(spark, exported[1])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _assert_same_frame(sql: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(sql.columns)
    assert dict(spark.dtypes) == dict(sql.dtypes)
    pd.testing.assert_frame_equal(_sorted(spark), _sorted(sql), rtol=TOLERANCE, atol=0)


WINDOW = Window(T0, T0 + timedelta(hours=1))
ODD_SPAN = Window(T0 - timedelta(minutes=95), T0 + timedelta(minutes=50))  # hours off the clock
PERIODS = [
    ("ticket_classifier", "v1", "acme", T0 - timedelta(hours=1), T0 - timedelta(minutes=20)),
    ("ticket_classifier", "v2", None, T0, T0 + timedelta(minutes=30)),
]


@pytest.mark.parametrize(
    ("aggregate", "args"),
    [
        ("class_counts", (WINDOW.start, WINDOW.end)),
        ("class_counts", (WINDOW.start, WINDOW.end, "no_such_model")),
        ("status_counts", (ODD_SPAN.start, ODD_SPAN.end)),
        ("compute_totals", (WINDOW.start, WINDOW.end)),
        ("compute_totals", (ODD_SPAN.start, ODD_SPAN.end, "ticket_classifier")),
        ("confidence_histogram", (WINDOW.start, WINDOW.end, FINE_EDGES.tolist())),
        ("confidence_histogram", (ODD_SPAN.start, ODD_SPAN.end, [0.3, 0.5, 0.77, 0.9])),
        ("confidence_histogram", (WINDOW.start, WINDOW.end, [0.0, 1.0])),
        ("hourly_counts", (ODD_SPAN.start, ODD_SPAN.end)),
        ("first_predictions", (None, WINDOW.end)),
        ("first_predictions", (WINDOW.start, WINDOW.end, "ticket_classifier")),
        ("period_class_counts", (PERIODS,)),
        ("period_confidence_histogram", (PERIODS, FINE_EDGES.tolist())),
    ],
)
def test_each_aggregate_equals_the_sql_one(
    exported: tuple[Engine, Path], on_spark: Any, aggregate: str, args: tuple[Any, ...]
) -> None:
    sql = getattr(SqlAggregates(exported[0]), aggregate)(*args)
    _assert_same_frame(sql, getattr(on_spark, aggregate)(*args))


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("window_start", "monitor", "metric", "model_version", "tenant"))


def _close(sql: Any, spark: Any) -> bool:
    """Equal, floats within the tolerance (also inside details)."""
    if isinstance(sql, dict) and isinstance(spark, dict):
        return sql.keys() == spark.keys() and all(_close(sql[k], spark[k]) for k in sql)
    if isinstance(sql, list) and isinstance(spark, list):
        return len(sql) == len(spark) and all(map(_close, sql, spark))
    if isinstance(sql, float) and isinstance(spark, float | int):
        return math.isclose(sql, spark, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(sql == spark)


def _assert_backfills_alike(engine: Engine, on_spark: Any, reference: str) -> None:
    """The backfill of SPAN from Spark has the SQL path's rows: same keys, counts, statuses,
    values and details within the tolerance."""
    monitors = MonitorsConfig(
        schedules=SCHEDULES,
        reference=reference,
        reference_window_hours=1,
        production_reference_hours=1,
        traffic=TrafficConfig(reference_hours=2),
    )
    config = AppConfig(monitors=monitors)
    runs = plan(SPAN, config)
    hours = [(r.window.start - T0, r.window.end - T0, len(r.monitors)) for r in runs]
    minutes = [tuple(int(t.total_seconds() // 60) for t in h[:2]) + h[2:] for h in hours]
    assert minutes == [(-60, -30, 1), (-60, 0, 4), (-30, 0, 1), (0, 30, 1), (0, 60, 4), (30, 60, 1)]
    # A store each: its production cache would hand the second engine the first one's reads.
    stores = [BaselineStore(engine, registry=lambda model, version: None) for _ in range(2)]
    sql = [
        r.to_json() for o in backfill(engine, runs, config, baselines=stores[0]) for r in o.results
    ]
    spark = [
        r.to_json()
        for o in backfill(engine, runs, config, source=on_spark, baselines=stores[1])
        for r in o.results
    ]
    assert sorted(map(_key, spark)) == sorted(map(_key, sql))
    by_key = {_key(r): r for r in spark}
    for row in sql:
        twin = by_key[_key(row)]
        assert (twin["n"], twin["status"]) == (row["n"], row["status"]), _key(row)
        assert _close(row, twin), (row, twin)
    # The data exercises every verdict that needs predictions: judged rows and thin ones.
    statuses = {r["status"] for r in sql}
    assert {"ok", "insufficient_data"} <= statuses
    assert {"warn", "alert"} & statuses
    assert {r["model_version"] for r in sql} >= {"v1", "v2"}


@pytest.mark.parametrize("reference", ["baseline", "window", "production"])
def test_a_backfill_on_spark_gives_the_sql_paths_results(
    exported: tuple[Engine, Path], on_spark: Any, reference: str
) -> None:
    _assert_backfills_alike(exported[0], on_spark, reference)


@pytest.mark.postgres
def test_an_export_from_postgresql_backfills_alike(
    spark: Any, postgres_available: bool, tmp_path: Path
) -> None:
    from monitors.spark_aggregates import SparkAggregates

    require(postgres_available, "PostgreSQL is not reachable")
    with scratch_schema(POSTGRES_URL, prefix="t") as url:
        engine = _seed_and_export(url, tmp_path / "parquet")
        try:
            _assert_backfills_alike(
                engine, SparkAggregates(spark, tmp_path / "parquet"), "production"
            )
        finally:
            engine.dispose()


def test_a_folder_without_an_export_is_a_clear_error(spark: Any, tmp_path: Path) -> None:
    from monitors.spark_aggregates import NoExportError, SparkAggregates

    with pytest.raises(NoExportError, match="servewatch export parquet"):
        SparkAggregates(spark, tmp_path).class_counts(WINDOW.start, WINDOW.end)
