"""A backfill on Spark beside the SQL path: export the seeded store to Parquet, then run the
monitors' hourly windows over its last `--hours` on both engines and compare the rows.

The store is bench_monitors' seeded one (three versions, five tenants, errors, a drifting
tenant, registered baselines) on SQLite. Spark runs in local mode (`--master`).

    .venv/bin/python bench/bench_backfill.py --size 200000 --hours 24
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_monitors as seeded

from core.config import AppConfig, MonitorSchedule, MonitorsConfig
from core.contracts import MONITOR_NAMES
from core.timeutil import Window
from monitors.backfill import backfill, plan
from monitors.baselines import BaselineStore
from storage.engine import create_store_engine
from storage.parquet_export import export_parquet

HOURLY = MonitorSchedule(every_seconds=3600, window_seconds=3600)


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label:<44} {time.perf_counter() - started:7.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="predictions in the store")
    parser.add_argument("--hours", type=int, default=24, help="backfilled hours (the last ones)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    url = seeded.store_url("sqlite", args.size, args.workdir, seeded.POSTGRES_URL)
    seeded.prepare_store("sqlite", args.size, url, seeded.POSTGRES_URL)
    engine = create_store_engine(url)
    everything = Window(seeded.START, seeded.START + seeded.SPAN)
    out = args.workdir / f"bench-backfill-{args.size}"
    shutil.rmtree(out, ignore_errors=True)
    files = timed(
        f"export {args.size:,} rows to Parquet", lambda: export_parquet(engine, everything, out)
    )
    print(f"  {len(files)} day files, {sum(f.rows for f in files):,} rows")

    config = AppConfig(monitors=MonitorsConfig(schedules=dict.fromkeys(MONITOR_NAMES, HOURLY)))
    span = Window(everything.end - timedelta(hours=args.hours), everything.end)
    runs = plan(span, config)
    baselines = BaselineStore(engine, registry=lambda model, version: None)
    print(f"backfill of {len(runs)} hourly windows ({args.hours} h, {args.master}):")
    sql = timed("SQL (SQLite)", lambda: backfill(engine, runs, config, baselines=baselines))

    from monitors.spark_aggregates import SparkAggregates, spark_session

    spark = timed("Spark session start", lambda: spark_session(args.master))
    source = SparkAggregates(spark, out)
    on_spark = timed(
        "Spark", lambda: backfill(engine, runs, config, source=source, baselines=baselines)
    )
    spark.stop()
    compare([r for o in sql for r in o.results], [r for o in on_spark for r in o.results])
    engine.dispose()


def compare(sql: list[Any], spark: list[Any]) -> None:
    """Rows, count and status mismatches, and the largest value difference."""
    twins = {(*r.key, r.window_start): r for r in spark}
    mismatched, worst = 0, 0.0
    for row in sql:
        twin = twins.get((*row.key, row.window_start))
        if twin is None or (twin.n, twin.status) != (row.n, row.status):
            mismatched += 1
            continue
        if row.value is not None and twin.value is not None and math.isfinite(row.value):
            worst = max(worst, abs(row.value - twin.value))
    print(f"  rows: SQL {len(sql)}, Spark {len(spark)}; n or status differ: {mismatched}")
    print(f"  largest value difference: {worst:.3g}")


if __name__ == "__main__":
    main()
