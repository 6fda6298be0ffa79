"""Benchmark: `storage.retention` pruning a store of N predictions written in days of blocks,
on SQLite and PostgreSQL. Prints rows deleted, rate, and the longest batch (the longest a writer
waits for SQLite's lock during a prune).

    .venv/bin/python bench/bench_retention.py [--records 200000] [--backends sqlite,postgresql]
        [--layout partitioned|single]

Each backend gets a fresh store (SQLite file in a temporary folder; PostgreSQL schema created
and dropped), filled with --days days of records (one block per 1,000 records), then pruned
keeping the newest half of the days. On PostgreSQL, `--layout partitioned` (the default: head,
a partition a day, dropped whole), `single` (the one table of migration 0008: batched deletes) or
`migrated` (filled as 0008, then migrated to head: the time 0009 and 0010 take, then the prune)
or `widened` (filled as 0009, then migrated to head: the time 0010's BIGINT ids take).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.retention import plan_prune, prune
from storage.writer import write_predictions
from tests.conftest import POSTGRES_URL
from tests.storage.records import make_records
from tests.support.scratch import scratch_schema

NOW = datetime(2026, 12, 10, tzinfo=UTC)
BLOCK = 1_000


@contextmanager
def _store(backend: str, layout: str) -> Iterator[str]:
    if backend == "postgresql":
        revision = {"partitioned": "head", "widened": "0009"}.get(layout, "0008")
        with scratch_schema(POSTGRES_URL, prefix="bench_retention", revision=revision) as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/store.db"
        upgrade(url)
        yield url


def run(backend: str, records: int, days: int, batch_rows: int, layout: str) -> None:
    with _store(backend, layout) as url:
        engine = create_store_engine(url)
        per_day = records // days
        filling = time.perf_counter()
        for day in range(days):
            start = NOW - timedelta(days=days - day)
            rows = make_records(per_day, seed=day, start=start, step_s=86_400 / per_day)
            for i in range(0, per_day, BLOCK):
                write_predictions(engine, rows[i : i + BLOCK], now=start)
        filled = time.perf_counter() - filling
        if backend == "postgresql":  # statistics as autovacuum keeps them on a running store
            with engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
        migrated = ""
        if backend == "postgresql" and layout in ("migrated", "widened"):
            engine.dispose()
            started = time.perf_counter()
            upgrade(url)  # 0009 converts the filled table, 0010 widens its ids
            migrated = f"migrated in {time.perf_counter() - started:.1f} s; "
            engine = create_store_engine(url)
        batches: list[float] = [0.0]
        last = [time.perf_counter()]

        def tick(_table: str, _rows: int) -> None:
            now = time.perf_counter()
            batches.append(now - last[0])
            last[0] = now

        started = time.perf_counter()
        plan = plan_prune(engine, now=NOW, keep_days=days / 2)
        planned = time.perf_counter() - started
        last[0] = time.perf_counter()
        result = prune(engine, plan, now=NOW, actor="bench", batch_rows=batch_rows, progress=tick)
        total = time.perf_counter() - started
        engine.dispose()
    print(
        f"{backend:10s} {layout if backend == 'postgresql' else '':11s} (filled in {filled:.0f} s; "
        f"{migrated}) "
        f"{records:>9,d} rows  deleted {result.predictions:>9,d} in {total:6.2f} s "
        f"({result.predictions / total:>9,.0f} rows/s; plan {planned:.2f} s)  "
        f"longest batch of {batch_rows:,d}: {max(batches) * 1000:.0f} ms; "
        f"{len(result.dropped)} partitions dropped whole"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    layouts = ("partitioned", "single", "migrated", "widened")
    parser.add_argument("--layout", choices=layouts, default="partitioned")
    arguments = parser.parse_args()
    for backend in arguments.backends.split(","):
        run(backend, arguments.records, arguments.days, arguments.batch_rows, arguments.layout)


if __name__ == "__main__":
    main()
