"""Soak: the service held at a fraction of its measured maximum rate for a long while.

One `servewatch serve` (2 workers, PostgreSQL) is first driven flat out by a closed loop to find
its maximum rate, then held at `--fraction` of it by an open-loop client for `--duration`
seconds. Every `--sample` seconds it records the resident memory of every server process and
the rows in the store. It reports the memory slope (MB per hour, least squares over the samples
after the first, which is warm-up) and the answered requests whose rows never reached the store.

    .venv/bin/python bench/bench_soak.py --duration 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from sqlalchemy import select  # noqa: E402

from storage.engine import create_store_engine  # noqa: E402
from storage.prediction_samples import prediction_count  # noqa: E402
from storage.schema import predictions  # noqa: E402
from tests.service.conftest import ServiceServer, auth, write_config  # noqa: E402
from tests.support.scratch import scratch_schema  # noqa: E402

TICKETS = (
    "I was charged twice for my subscription this month, please refund the duplicate.",
    "The app crashes every time I open the settings page.",
    "My parcel was supposed to arrive on Monday but tracking shows nothing.",
    "Invoice #4411 lists the wrong VAT number for our company.",
)


@dataclass
class Sample:
    at_s: float
    rss_mb: dict[int, float]
    rows: int

    @property
    def total_mb(self) -> float:
        return sum(self.rss_mb.values())


def server_rss(server: ServiceServer) -> dict[int, float]:
    """Resident memory (MB) of the arbiter and each worker, by pid."""
    assert server.process is not None
    root = psutil.Process(server.process.pid)
    sizes = {}
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            sizes[process.pid] = process.memory_info().rss / 2**20
    return sizes


def stored_rows(database_url: str) -> int:
    engine = create_store_engine(database_url)
    try:
        return prediction_count(engine)
    finally:
        engine.dispose()


async def closed_loop(url: str, seconds: float, connections: int) -> float:
    """Requests per second with `connections` clients sending back to back."""
    done = 0
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient, index: int) -> None:
        nonlocal done
        i = index
        while time.monotonic() < deadline:
            i += connections
            answer = await http.post(
                "/classify_ticket", json={"text": TICKETS[i % 4]}, headers=auth()
            )
            done += answer.status_code == 200

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(http, i) for i in range(connections)))
        return done / (time.monotonic() - started)


async def open_loop(url: str, rate: float, seconds: float, answered: list[str]) -> int:
    """Send at `rate` per second for `seconds`; the ids of answered requests go to `answered`.
    Returns how many could not be sent on time (the client fell behind)."""
    behind = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def one(http: httpx.AsyncClient, i: int) -> None:
        try:
            answer = await http.post(
                "/classify_ticket", json={"text": TICKETS[i % 4]}, headers=auth()
            )
        except httpx.TransportError:
            return
        body = answer.json()
        answered.append(
            body["request_id"] if answer.status_code == 200 else body["error"]["request_id"]
        )

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as http:
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif len(in_flight) >= 64:
                behind += 1
                continue
            task = asyncio.create_task(one(http, i))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    return behind


def slope_mb_per_hour(samples: list[Sample]) -> float:
    """Least-squares slope of total RSS over time, warm-up sample left out."""
    steady = samples[1:] if len(samples) > 2 else samples
    if len(steady) < 2:
        return 0.0
    return (
        statistics.linear_regression([s.at_s for s in steady], [s.total_mb for s in steady]).slope
        * 3600
    )


@contextlib.contextmanager
def database(url: str) -> Iterator[str]:
    with scratch_schema(url, prefix="soak") as scoped:
        yield scoped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds at the held rate")
    parser.add_argument("--fraction", type=float, default=0.8, help="of the measured maximum")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--probe", type=float, default=20.0, help="seconds of the maximum probe")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--models-home", type=Path, help="BentoML home with built models")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp,
        database(args.database_url) as url,
    ):
        work = Path(tmp)
        models_home = args.models_home
        if models_home is None:
            from service.models.build import build_all

            models_home = work / "bentoml"
            print(f"building models into {models_home}", flush=True)
            build_all(home=models_home)
        server = ServiceServer(
            home=work / "home",
            config=write_config(work / "servewatch.yaml"),
            models_home=models_home.resolve(),
            database_url=url,
            workers=args.workers,
            env={"SERVEWATCH_LOG_FLUSH_INTERVAL_S": "0.5"},
        )
        server.start()
        try:
            soak(server, url, args)
        finally:
            server.stop()


def soak(server: ServiceServer, database_url: str, args: argparse.Namespace) -> None:
    maximum = asyncio.run(closed_loop(server.url, args.probe, connections=32))
    rate = maximum * args.fraction
    print(
        f"maximum {maximum:.0f} req/s (closed loop, 32 connections); holding {rate:.0f} req/s",
        flush=True,
    )
    answered: list[str] = []
    samples = [Sample(0.0, server_rss(server), stored_rows(database_url))]
    started = time.monotonic()
    behind = 0
    while time.monotonic() - started < args.duration:
        chunk = min(args.sample, args.duration - (time.monotonic() - started))
        behind += asyncio.run(open_loop(server.url, rate, chunk, answered))
        sample = Sample(time.monotonic() - started, server_rss(server), stored_rows(database_url))
        samples.append(sample)
        print(
            f"{sample.at_s:7.0f} s  RSS {sample.total_mb:7.1f} MB "
            f"({', '.join(f'{mb:.0f}' for mb in sample.rss_mb.values())})  rows {sample.rows}",
            flush=True,
        )
    time.sleep(3)  # the writers' last batches
    rows = stored_rows(database_url)
    ids = set(answered)
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = set(connection.execute(select(predictions.c.request_id)).scalars())
    finally:
        engine.dispose()
    lost = len(ids - stored)
    print()
    print(
        f"held {rate:.0f} req/s ({args.fraction:.0%} of {maximum:.0f}) for "
        f"{args.duration:.0f} s, {args.workers} workers, PostgreSQL"
    )
    print(f"answered {len(ids)}, rows {rows}, lost {lost}, not sent on time {behind}")
    print(
        f"RSS total {samples[0].total_mb:.1f} -> {samples[-1].total_mb:.1f} MB; slope "
        f"{slope_mb_per_hour(samples):+.1f} MB/h (samples after the first)"
    )


if __name__ == "__main__":
    main()
