"""A worker SIGKILLed under load loses nothing: every request the client saw answered is stored
(its records were in the journal before the answer went out; a sibling or the restarted worker
replays them)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import select

from storage.engine import create_store_engine
from storage.schema import predictions
from tests.conftest import require
from tests.service.conftest import ServiceServer, auth, fresh_postgres_url, write_config

LOAD_SECONDS = 8.0
KILL_AFTER_S = 2.5
CLIENTS = 12


@pytest.fixture
def database_url(postgres_available: bool) -> Iterator[str]:
    require(postgres_available, "PostgreSQL is not reachable")
    yield from fresh_postgres_url()


def _load(url: str, stop: threading.Event, answered: list[str], lock: threading.Lock) -> None:
    """Requests until `stop`; the ids of the rows each answer stands for go to `answered`."""
    with httpx.Client(base_url=url, timeout=10) as client:
        i = 0
        while not stop.is_set():
            i += 1
            bulk = i % 5 == 0
            path, body = (
                ("/classify_tickets", {"tickets": ["refund me", "app crashes"]})
                if bulk
                else ("/classify_ticket", {"text": f"ticket {i} about my invoice"})
            )
            try:
                answer = client.post(path, json=body, headers=auth())
            except httpx.TransportError:
                continue  # cut off by the kill: never answered, nothing to find
            payload = answer.json()
            if answer.status_code == 200 and bulk:
                ids = [item["request_id"] for item in payload["predictions"]]
            elif answer.status_code == 200:
                ids = [payload["request_id"]]
            else:
                ids = [payload["error"]["request_id"]]
            with lock:
                answered.extend(ids)


def _stored(database_url: str, ids: set[str], timeout: float = 90.0) -> set[str]:
    engine = create_store_engine(database_url)
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                found = set(connection.execute(select(predictions.c.request_id)).scalars())
            if ids <= found:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return found


def test_a_worker_killed_under_load_loses_no_answered_request(
    tmp_path: Path, built_models_home: Path, database_url: str
):
    home = tmp_path / "home"
    server = ServiceServer(
        home=home,
        config=write_config(tmp_path / "servewatch.yaml"),
        models_home=built_models_home,
        database_url=database_url,
        workers=2,
        env={"SERVEWATCH_LOG_FLUSH_INTERVAL_S": "0.5"},
    )
    server.start()
    stop, lock = threading.Event(), threading.Lock()
    answered: list[str] = []
    clients = [
        threading.Thread(target=_load, args=(server.url, stop, answered, lock))
        for _ in range(CLIENTS)
    ]
    try:
        for client in clients:
            client.start()
        time.sleep(KILL_AFTER_S)
        assert server.process is not None
        arbiter = psutil.Process(server.process.pid)
        workers = [p for p in arbiter.children(recursive=True) if "worker" in " ".join(p.cmdline())]
        with lock:
            answered_before_kill = len(answered)
        os.kill(workers[0].pid, signal.SIGKILL)
        time.sleep(LOAD_SECONDS - KILL_AFTER_S)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
    try:
        expected = set(answered)
        assert answered_before_kill > 50
        assert len(expected) == len(answered)  # every row id is unique
        missing = expected - _stored(database_url, expected)
        left = sorted(p.name for p in (home / "spill").glob("*"))
        assert missing == set(), (
            f"{len(missing)} of {len(expected)} answered requests lost; spill folder: {left}",
            server.log_text()[-6000:],
        )
    finally:
        server.stop()
    leftovers = sorted(p.name for p in (home / "spill").glob("journal-*"))
    assert leftovers == [], leftovers  # replayed by the sibling or the restarted worker
