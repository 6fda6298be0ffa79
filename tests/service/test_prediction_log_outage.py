"""Real outages: PostgreSQL unreachable behind a loopback TCP proxy that stops and restarts
mid-traffic, and a worker process killed with spilled records on disk."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service.prediction_log import PredictionLog
from service.spill import SpillDirectory
from tests.service.test_prediction_log import (
    Observed,
    row_count,
    spill_files,
    stored_ids,
    wait_until,
)
from tests.storage.records import make_records
from tests.support.tcp_proxy import TcpProxy

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy(store_url: str) -> Iterator[TcpProxy]:
    url = make_url(store_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy
    proxy.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgres_unreachable_mid_traffic_loses_and_duplicates_nothing(
    store_url, store_engine, proxy, tmp_path
):
    proxied = make_url(store_url).set(port=proxy.port).render_as_string(hide_password=False)
    observed = Observed()
    log = PredictionLog(
        proxied,
        tmp_path / "spill",
        batch_size=40,
        flush_interval_s=0.02,
        retry_interval_s=0.05,
        metrics=observed.metrics,
    )
    log.start()
    records = make_records(3000)
    submitted = threading.Event()

    def traffic() -> None:
        for index, record in enumerate(records):
            log.submit(record)
            if index % 50 == 49:
                time.sleep(0.005)
        submitted.set()

    sender = threading.Thread(target=traffic)
    try:
        sender.start()
        assert wait_until(lambda: row_count(store_engine) >= 300)
        proxy.stop()
        assert wait_until(lambda: not log.healthy)
        assert wait_until(lambda: observed.events()["spilled"] >= 500)
        rows_while_down = row_count(store_engine)
        assert wait_until(lambda: observed.backlog() > 0)
        proxy.start()
        assert submitted.wait(timeout=30)
        assert log.flush(timeout=20)
        assert wait_until(lambda: row_count(store_engine) == 3000, timeout=30)
        assert wait_until(lambda: observed.backlog() == 0)
    finally:
        sender.join(timeout=30)
        log.close()

    assert rows_while_down < 3000
    assert log.healthy
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)
    events = observed.events()
    assert events["queued"] == 3000
    assert events["written"] + events["spilled"] == 3000
    assert events["replayed"] == events["spilled"] >= 500
    assert events["dropped"] == 0
    assert spill_files(tmp_path / "spill") == []


def test_close_parks_the_queue_on_disk_while_the_store_hangs(tmp_path, caplog):
    # A listener that never answers: connections open, then nothing (a hung server).
    with socket.create_server(("127.0.0.1", 0), backlog=64) as hung:
        port = hung.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=1"
        spill_dir = tmp_path / "spill"
        observed = Observed()
        log = PredictionLog(url, spill_dir, batch_size=30, metrics=observed.metrics)
        log.start()
        for record in make_records(50):  # the writer takes 30 and hangs connecting
            log.submit(record)
        started = time.monotonic()
        log.close(timeout=0.3)
        assert time.monotonic() - started < 1.0  # close() keeps to its timeout
        assert "did not stop" in caplog.text
        assert spilled_lines(spill_dir) == 20  # the queue went to disk at once
        assert wait_until(lambda: observed.events()["spilled"] == 50, timeout=15)
    assert spilled_lines(spill_dir) == 50
    assert not log.healthy


def spilled_lines(directory: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in spill_files(directory))


def test_a_killed_worker_leaves_spill_files_another_replays(store_url, store_engine, tmp_path):
    spill_dir = tmp_path / "spill"
    unmigrated = f"sqlite:///{tmp_path / 'not-migrated.db'}"  # the worker's store is not ready
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pathlib import Path
                from service.prediction_log import PredictionLog
                from tests.storage.records import make_records
                log = PredictionLog(sys.argv[1], Path(sys.argv[2]), batch_size=25,
                                    flush_interval_s=0.01, retry_interval_s=60)
                log.start()
                for record in make_records(180):
                    log.submit(record)
                print("durable" if log.flush() else "pending", flush=True)
                time.sleep(60)
                """
            ),
            unmigrated,
            str(spill_dir),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "durable"
        assert SpillDirectory(spill_dir).adopt_orphans() == 0  # alive: its files are its own
    finally:
        child.kill()  # SIGKILL: no close(), no flush, locks dropped by the kernel
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    [leftover] = spill_files(spill_dir)
    with leftover.open("ab") as handle:  # and it died in the middle of a write
        handle.write(b'{"request_id": "half-written", "tenant": "ac')

    observed = Observed()
    survivor = PredictionLog(store_url, spill_dir, metrics=observed.metrics)
    survivor.start()
    try:
        assert wait_until(lambda: row_count(store_engine) == 180)
        assert wait_until(lambda: observed.events()["dropped"] == 1)
    finally:
        survivor.close()
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in make_records(180))
    assert observed.events()["replayed"] == 180
    assert spill_files(spill_dir) == []
