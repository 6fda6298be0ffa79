"""Benchmark: the prediction-log writer fed directly, into SQLite and PostgreSQL, next to a naive
writer (SQLAlchemy ORM, Session.add + commit per row). Prints a table and the ratios.

    .venv/bin/python bench/bench_writer.py [--records 100000] [--backends sqlite,postgresql]

Runs per backend, each on a fresh store (SQLite file in a temporary folder; PostgreSQL schema
created and dropped):
- burst: one thread submits N records as fast as it can; the rate is N over the time from the
  first submit until every record is durable in the store (spilled overflow replayed too);
- paced: records offered at --paced-rate for --paced-seconds; reports whether the log kept up
  (nothing spilled) and how long after the last submit the store held everything;
- replay: N records spilled to disk while the store is away (table renamed), timed from its
  return until all are in the store;
- naive: the same records written one row per ORM commit (a smaller count).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import DeclarativeBase, Session

from core.catalog import SERVICE_METRICS
from core.metrics import create_metrics
from service.prediction_log import PredictionLog
from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.schema import predictions
from tests.support.scratch import scratch_schema

DEFAULT_POSTGRES_URL = os.environ.get(
    "SERVEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_RATE = 50_000
# Paced runs keep up when the store holds everything this soon after the last submit.
KEPT_UP_DRAIN_S = 1.0
CLASSES = ("billing", "technical", "account", "shipping", "other")


class _Base(DeclarativeBase):
    pass


class Prediction(_Base):
    """ORM mapping of the predictions table, for the naive writer."""

    __table__ = predictions


def make_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Seeded records shaped like the service's (about 1 in 20 an error)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 16, tzinfo=UTC)
    records = []
    for i in range(n):
        ok = rng.random() > 0.05
        confidence = rng.uniform(0.3, 1.0)
        predicted = rng.choice(CLASSES)
        records.append(
            {
                "request_id": f"{seed:x}-{i:08d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
                "ts": start + timedelta(microseconds=i * 20),
                "tenant": rng.choice(("acme", "globex", "initech")),
                "endpoint": "classify_ticket",
                "model_name": "ticket_classifier",
                "model_version": "1",
                "predicted_class": predicted if ok else None,
                "confidence": confidence if ok else None,
                "latency_ms": rng.uniform(2, 40),
                "compute_ms": rng.uniform(0.01, 0.5),
                "batch_size": rng.choice((1, 4, 16)),
                "status": "ok" if ok else "model_error",
                "region": "eu",
                "resource_class": "cpu",
                "probabilities": {predicted: confidence, "other": 1 - confidence} if ok else None,
                "error_message": None if ok else "inference failed",
            }
        )
    return records


@dataclass
class Result:
    backend: str
    writer: str
    records: int
    seconds: float
    cpu_seconds: float  # this process, all threads (the database server's CPU not included)
    spilled: int = 0
    replayed: int = 0
    dropped: int = 0
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_seconds / self.records * 1e6


@contextmanager
def fresh_store(backend: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """URL of an empty, migrated store; removed afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        upgrade(url)
        yield url
        return
    with scratch_schema(postgres_url, prefix="bench_writer") as url:
        yield url


def row_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def events(registry: CollectorRegistry) -> dict[str, int]:
    name = "servewatch_prediction_log_records_total"
    return {
        event: int(registry.get_sample_value(name, {"event": event}) or 0)
        for event in ("queued", "written", "spilled", "replayed", "dropped")
    }


def wait_for_rows(engine: Engine, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if row_count(engine) >= expected:
            return True
        time.sleep(0.005)
    return False


def new_log(url: str, spill_dir: Path, args: argparse.Namespace) -> tuple[PredictionLog, Any]:
    registry = CollectorRegistry()
    log = PredictionLog(
        url,
        spill_dir,
        queue_size=args.queue_size,
        batch_size=args.batch_size,
        flush_interval_s=args.flush_interval,
        metrics=create_metrics(SERVICE_METRICS, registry),
        retry_interval_s=0.1,
    )
    return log, registry


def run_burst(backend: str, url: str, workdir: Path, args: argparse.Namespace) -> Result:
    records = make_records(args.records, seed=1)
    engine = create_store_engine(url)
    log, registry = new_log(url, workdir / f"spill-{uuid.uuid4().hex[:6]}", args)
    gc.collect()
    gc.freeze()  # the bench's own pre-built records are not the writer's garbage to scan
    log.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    for record in records:
        log.submit(record)
    submitted = time.perf_counter() - started
    durable = log.flush(timeout=args.timeout)
    complete = wait_for_rows(engine, len(records), args.timeout)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    log.close()
    gc.unfreeze()
    counted = events(registry)
    engine.dispose()
    note = f"submit {len(records) / submitted:,.0f}/s"
    if not (durable and complete):
        note += "; INCOMPLETE"
    return Result(
        backend,
        "prediction log, burst",
        len(records),
        seconds,
        cpu_seconds,
        counted["spilled"],
        counted["replayed"],
        counted["dropped"],
        note,
    )


def run_paced(backend: str, url: str, workdir: Path, args: argparse.Namespace) -> Result:
    total = int(args.paced_rate * args.paced_seconds)
    records = make_records(total, seed=2)
    engine = create_store_engine(url)
    log, registry = new_log(url, workdir / f"spill-{uuid.uuid4().hex[:6]}", args)
    gc.collect()
    gc.freeze()
    log.start()
    tick = 0.005
    per_tick = max(int(args.paced_rate * tick), 1)
    started, cpu_started = time.perf_counter(), time.process_time()
    for index in range(0, total, per_tick):
        due = started + (index / args.paced_rate)
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for record in records[index : index + per_tick]:
            log.submit(record)
    offered_s = time.perf_counter() - started
    complete = wait_for_rows(engine, total, args.timeout)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    log.close()
    gc.unfreeze()
    counted = events(registry)
    engine.dispose()
    offered = total / offered_s
    drain_s = seconds - offered_s
    kept_up = counted["spilled"] == 0 and complete and drain_s <= KEPT_UP_DRAIN_S
    note = f"offered {offered:,.0f}/s; in store {drain_s:.2f}s after the last submit; " + (
        "kept up" if kept_up else "fell behind"
    )
    return Result(
        backend,
        f"prediction log, paced {args.paced_rate:,}/s",
        total,
        seconds,
        cpu_seconds,
        counted["spilled"],
        counted["replayed"],
        counted["dropped"],
        note,
    )


def run_replay(backend: str, url: str, workdir: Path, args: argparse.Namespace) -> Result:
    """Records spilled while the store was away, then timed from its return until all are in."""
    records = make_records(args.records, seed=4)
    engine = create_store_engine(url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions RENAME TO predictions_away"))
    log, registry = new_log(url, workdir / f"spill-{uuid.uuid4().hex[:6]}", args)
    gc.collect()
    gc.freeze()
    log.start()
    for record in records:
        log.submit(record)
    durable = log.flush(timeout=args.timeout)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions_away RENAME TO predictions"))
    started, cpu_started = time.perf_counter(), time.process_time()
    complete = wait_for_rows(engine, len(records), args.timeout)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    log.close()
    gc.unfreeze()
    counted = events(registry)
    engine.dispose()
    return Result(
        backend,
        "prediction log, replay after outage",
        len(records),
        seconds,
        cpu_seconds,
        counted["spilled"],
        counted["replayed"],
        counted["dropped"],
        "" if durable and complete else "INCOMPLETE",
    )


def run_naive(backend: str, url: str, args: argparse.Namespace) -> Result:
    records = make_records(args.naive_records, seed=3)
    engine = create_store_engine(url)
    started, cpu_started = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        for record in records:
            session.add(Prediction(**record))
            session.commit()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    assert row_count(engine) == len(records)
    engine.dispose()
    return Result(backend, "naive ORM, commit per row", len(records), seconds, cpu_seconds)


def print_table(results: list[Result]) -> None:
    header = (
        f"{'backend':<11}{'writer':<37}{'records':>9}{'seconds':>9}{'records/s':>11}"
        f"{'cpu us/rec':>11}{'spilled':>9}{'replayed':>9}{'dropped':>8}  note"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<11}{r.writer:<37}{r.records:>9,}{r.seconds:>9.2f}{r.rate:>11,.0f}"
            f"{r.cpu_us_per_record:>11.1f}{r.spilled:>9,}{r.replayed:>9,}{r.dropped:>8,}  {r.note}"
        )


def print_ratios(results: list[Result]) -> bool:
    ok = True
    print()
    for backend in dict.fromkeys(r.backend for r in results):
        mine = {r.writer: r for r in results if r.backend == backend}
        burst = next(r for w, r in mine.items() if w.endswith("burst"))
        naive = next(r for w, r in mine.items() if w.startswith("naive"))
        passed = burst.rate >= TARGET_RATE
        ok &= passed
        print(
            f"{backend}: prediction log / naive ORM = {burst.rate / naive.rate:,.1f}x; "
            f"burst {burst.rate:,.0f}/s vs target {TARGET_RATE:,}/s: "
            f"{'PASS' if passed else 'FAIL'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--naive-records", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--queue-size", type=int, default=100_000)
    parser.add_argument("--flush-interval", type=float, default=0.5)
    parser.add_argument("--paced-rate", type=int, default=TARGET_RATE)
    parser.add_argument("--paced-seconds", type=float, default=4.0)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    # The replay run takes the store away on purpose: its warning is expected; errors are not.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    load_before = os.getloadavg()[0]

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends.split(","):
            for run in ("burst", "paced", "replay", "naive"):
                with fresh_store(backend, workdir, args.postgres_url) as url:
                    if run == "burst":
                        results.append(run_burst(backend, url, workdir, args))
                    elif run == "paced":
                        results.append(run_paced(backend, url, workdir, args))
                    elif run == "replay":
                        results.append(run_replay(backend, url, workdir, args))
                    else:
                        results.append(run_naive(backend, url, args))
    print(
        f"cores: {os.cpu_count()}, load average (1 min) before {load_before:.1f}, "
        f"after {os.getloadavg()[0]:.1f}; batch size {args.batch_size}, "
        f"queue size {args.queue_size:,}"
    )
    print_table(results)
    return 0 if print_ratios(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
