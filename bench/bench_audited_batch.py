"""Benchmark: CPU per record of one audited batch write (the prediction log's store write on
PostgreSQL: COPY, audit rows and the sealed block), in the writing thread and in PostgreSQL.

    .venv/bin/python bench/bench_audited_batch.py [--batch-sizes 20,100,500] [--batches 150]
        [--layout partitioned|single] [--past-days N]

Each batch is `storage.writer.write_predictions` of service-shaped rows on a scratch schema.
Reported per batch size: the writing thread's CPU per record (`time.thread_time`), the CPU of
every PostgreSQL process per record (psutil; other load on the machine adds to it), and the
fixed cost per batch that the two sizes at either end imply. `--layout single` runs on the
store as migration 0008 left it (one table on PostgreSQL), `partitioned` (the default) on head's
daily partitions, with `--past-days` day partitions made beforehand (a year's store has 365).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.contracts import PREDICTION_COLUMNS
from storage.engine import create_store_engine
from storage.log_engine import prediction_log_engine
from storage.partitions import ensure_days
from storage.writer import prediction_encoder, write_predictions
from tests.support.scratch import scratch_schema

DEFAULT_POSTGRES_URL = os.environ.get(
    "SERVEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def service_rows(count: int, rng: random.Random) -> list[list[Any]]:
    """Rows shaped like the service's (an ok classify_ticket answer with an input digest)."""
    rows = []
    for _ in range(count):
        values = dict.fromkeys(PREDICTION_COLUMNS)
        values.update(
            request_id=uuid.uuid4().hex, ts=datetime.now(UTC), tenant="acme",
            endpoint="classify_ticket", model_name="ticket_classifier", model_version="v1",
            predicted_class="billing", confidence=rng.random(), latency_ms=3.2, compute_ms=1.1,
            batch_size=4, status="ok", region="eu", resource_class="cpu",
            probabilities={"billing": 0.7, "other": 0.3}, input_hmac=rng.randbytes(32).hex(),
        )  # fmt: skip
        rows.append([values[column] for column in PREDICTION_COLUMNS])
    return rows


def postgres_cpu_s() -> float:
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if (process.info["name"] or "").startswith("postgres"):
            try:
                total += sum(process.cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
    return total


def backend_cpu_s(pid: int) -> float:
    """CPU of one PostgreSQL backend (the writer's), unlike `postgres_cpu_s` blind to the
    other sessions of a shared server."""
    return float(sum(psutil.Process(pid).cpu_times()[:2]))


def measure(url: str, batch_size: int, batches: int, seed: int) -> tuple[float, ...]:
    """Per record (µs) for `batches` batches of `batch_size`: the writer thread's CPU, every
    PostgreSQL process's CPU, the writer's backend's CPU, and the median batch's wall time."""
    rng = random.Random(seed)
    engine = prediction_log_engine(url)
    try:
        encode = prediction_encoder(engine)
        work = [service_rows(batch_size, rng) for _ in range(batches)]
        write_predictions(engine, service_rows(batch_size, rng))  # connect, warm the caches
        with engine.connect() as connection:  # the pool's one connection, the writer's
            pid = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        thread_start, postgres_start = time.thread_time(), postgres_cpu_s()
        backend_start = backend_cpu_s(pid)
        walls = []
        for rows in work:
            started = time.perf_counter()
            write_predictions(engine, rows, [encode(row) for row in rows])
            walls.append(time.perf_counter() - started)
        records = batch_size * batches
        return (
            1e6 * (time.thread_time() - thread_start) / records,
            1e6 * (postgres_cpu_s() - postgres_start) / records,
            1e6 * (backend_cpu_s(pid) - backend_start) / records,
            1e6 * statistics.median(walls) / batch_size,
        )
    finally:
        engine.dispose()


def make_past_days(url: str, days: int) -> None:
    """Create the partitions of the `days` days before today (an old store's)."""
    engine = create_store_engine(url)
    today = datetime.now(UTC).date()
    with engine.begin() as connection:
        ensure_days(connection, [today - timedelta(days=i) for i in range(1, days + 1)])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="20,100,500")
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--layout", choices=("partitioned", "single"), default="partitioned")
    parser.add_argument("--past-days", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    title = f"audited batch write, CPU per record (µs), {args.layout}"
    if args.layout == "partitioned":
        title += f", {args.past_days} past days"
    table = Table(title=title)
    for column in ("batch size", "writer thread", "PostgreSQL", "its backend", "wall (median)"):
        table.add_column(column, justify="right")
    results = {}
    for size in sizes:
        revision = "0008" if args.layout == "single" else "head"
        with scratch_schema(args.postgres_url, prefix="bench", revision=revision) as url:
            if args.layout == "partitioned":
                make_past_days(url, args.past_days)
            results[size] = measure(url, size, args.batches, seed=size)
        table.add_row(str(size), *(f"{value:.1f}" for value in results[size]))
    console = Console()
    console.print(table)
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        per_batch = (results[small][0] - results[large][0]) / (1 / small - 1 / large)
        console.print(f"writer thread: ~{per_batch:.0f} µs a batch, fixed")


if __name__ == "__main__":
    main()
