"""Benchmark: the prediction log's writer-thread CPU per record when fed the service's way.

    .venv/bin/python bench/bench_log_cpu.py [--rates 100,530,2000] [--seconds 8]

A `PredictionLog` on a scratch PostgreSQL schema gets `submit_later(prediction_rows, trace, ...)`
for request traces shaped like the service's, at a paced rate, from a main thread that churns
through objects between submits the way a loaded event loop does (so that the writer finds
cold caches and has to take the GIL from a busy thread). Reported: the writer thread's CPU per
record at each rate, and its ratio to a burst (the same records submitted at once), which has
no idle ticks and shares its fixed costs among many records. Run it pinned to one CPU
(`taskset -c 0`) to match a worker's situation.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.instrumentation import ItemOutcome, RequestTrace
from service.prediction_log import ENCODE_TICK_S, PredictionLog
from service.prediction_rows import prediction_rows
from tests.support.scratch import scratch_schema

DEFAULT_POSTGRES_URL = os.environ.get(
    "SERVEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLASSES = ("billing", "technical", "account", "shipping", "other")


def make_trace(rng: random.Random) -> RequestTrace:
    """A finished single-ticket request, as the service's gateway leaves it."""
    weights = [rng.random() for _ in CLASSES]
    total = sum(weights)
    probabilities = {c: w / total for c, w in zip(CLASSES, weights, strict=True)}
    best = max(probabilities, key=probabilities.__getitem__)
    trace = RequestTrace(
        request_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        endpoint="classify_ticket",
        received_at=datetime.now(UTC),
        started=time.perf_counter(),
        tenant="acme",
        model_name="ticket_classifier",
        model_version="bench",
        resource_class="cpu",
    )
    trace.items.append(ItemOutcome(best, probabilities[best], probabilities, 4, 0.0012))
    return trace


def rows_of(trace: RequestTrace, outcome: str, latency_s: float) -> list[list[object]]:
    return prediction_rows(trace, outcome, latency_s, store_raw_inputs=False, redact=str)


def writer_cpu_s(log: PredictionLog) -> float:
    """The writer thread's CPU time: scheduler nanoseconds on Linux, else psutil's ticks."""
    thread = log._thread
    assert thread is not None
    assert thread.native_id is not None
    schedstat = Path(f"/proc/self/task/{thread.native_id}/schedstat")
    if schedstat.exists():
        return int(schedstat.read_text().split()[0]) / 1e9
    for found in psutil.Process().threads():
        if found.id == thread.native_id:
            return found.user_time + found.system_time
    raise RuntimeError("the writer thread is gone")


def run(url: str, rate: float | None, records: int, seed: int, tick_s: float) -> float:
    """Writer CPU µs per record; `rate` None submits everything at once."""
    rng = random.Random(seed)  # a seed per run: its request ids are new to the store
    log = PredictionLog(url, Path(tempfile.mkdtemp(prefix="bench-log-cpu-")), tick_s=tick_s)
    log.start()
    before = writer_cpu_s(log)
    start = time.perf_counter()
    for i in range(records):
        log.submit_later(rows_of, make_trace(rng), "ok", 0.012)
        if rate is None:
            continue
        due = start + (i + 1) / rate
        while time.perf_counter() < due:  # a busy event loop: allocate and touch objects
            _ = [{"n": n, "s": str(n)} for n in range(300)]
    assert log.flush(timeout=60), "the log did not drain"
    cpu = writer_cpu_s(log) - before
    log.close()
    return cpu / records * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,530,2000", help="records per second, paced")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each paced run")
    parser.add_argument("--ticks", default=f"{ENCODE_TICK_S}", help="writer ticks (s) to compare")
    parser.add_argument("--burst-records", type=int, default=20_000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    ticks = [float(t) for t in args.ticks.split(",")]
    with scratch_schema(args.postgres_url, prefix="bench_log_cpu") as url:
        run(url, None, 2_000, seed=0, tick_s=ticks[0])  # warm-up: connection, first encodings
        burst = run(url, None, args.burst_records, seed=1, tick_s=ticks[0])
        paced = [
            (rate, tick, run(url, rate, int(rate * args.seconds), seed, tick))
            for seed, (rate, tick) in enumerate(itertools.product(rates, ticks), start=2)
        ]
    print(f"{'feed':<18}{'tick s':>8}{'records':>9}{'writer CPU us/rec':>20}{'x burst':>9}")
    print(f"{'burst':<18}{ticks[0]:>8}{args.burst_records:>9,}{burst:>20.1f}{1.0:>9.2f}")
    for rate, tick, cpu in paced:
        feed, records = f"paced {rate:,.0f}/s", int(rate * args.seconds)
        print(f"{feed:<18}{tick:>8}{records:>9,}{cpu:>20.1f}{cpu / burst:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
