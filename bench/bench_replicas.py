"""Benchmark: N service replicas (1 worker each) writing to one PostgreSQL, under closed-loop
load; how many predictions per second the replicas answer and the store takes in.

    .venv/bin/python bench/bench_replicas.py [--replicas 4] [--connections 16] [--duration 20]

Each replica is `servewatch serve` on its own loopback port and home, all on one scratch schema.
Reported: requests answered per second (all replicas), rows stored per second (from the first
request until the last row landed: the prediction-log writers' throughput into one PostgreSQL),
how long after the last answer the last row landed, and the CPU cores of this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.engine import create_store_engine
from storage.schema import predictions
from tests.service.conftest import ServiceServer, auth, write_config
from tests.support.scratch import scratch_schema

DEFAULT_POSTGRES_URL = os.environ.get(
    "SERVEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def load(server: ServiceServer, prefix: str, stop: threading.Event, sent: list[int]) -> None:
    """One connection's closed loop until `stop`; appends how many requests got a 200."""
    ok = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while not stop.is_set():
            answer = client.post(
                "/classify_ticket",
                json={"text": "I was charged twice, please refund"},
                headers={**auth(), "X-Request-ID": f"{prefix}-{uuid.uuid4().hex[:12]}"},
            )
            ok += answer.status_code == 200
    sent.append(ok)


def stored(engine, prefix: str) -> int:
    ids = predictions.c.client_request_id
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(ids.like(f"{prefix}-%"))).scalar())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--models-home", type=Path, required=True, help="BentoML home, built")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_schema(args.postgres_url, "bench") as url:
        root = Path(tmp)
        config = write_config(root / "servewatch.yaml")
        servers = [
            ServiceServer(home=root / f"r{i}", config=config, models_home=args.models_home,
                          database_url=url)
            for i in range(args.replicas)
        ]  # fmt: skip
        engine = create_store_engine(url)
        try:
            with ThreadPoolExecutor(args.replicas) as pool:
                list(pool.map(lambda s: s.start(timeout=180), servers))
            prefix, stop, sent = uuid.uuid4().hex[:10], threading.Event(), []
            threads = [
                threading.Thread(target=load, args=(servers[i % len(servers)], prefix, stop, sent))
                for i in range(args.connections)
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            while time.monotonic() - started < args.duration:
                time.sleep(1)
                rows = stored(engine, prefix)
                print(f"{time.monotonic() - started:5.1f} s: {rows} rows stored", flush=True)
            stop.set()
            for thread in threads:
                thread.join()
            answered_s = time.monotonic() - started
            answered = sum(sent)
            while (rows := stored(engine, prefix)) < answered and time.monotonic() - started < 120:
                time.sleep(0.1)
            landed_s = time.monotonic() - started
        finally:
            for server in servers:
                server.stop()
            engine.dispose()
    print(f"replicas {args.replicas}, connections {args.connections}, CPUs {os.cpu_count()}")
    print(f"answered {answered} in {answered_s:.1f} s: {answered / answered_s:.0f} requests/s")
    print(f"stored {rows} in {landed_s:.1f} s: {rows / landed_s:.0f} rows/s "
          f"(last row {landed_s - answered_s:.1f} s after the last answer)")  # fmt: skip


if __name__ == "__main__":
    main()
