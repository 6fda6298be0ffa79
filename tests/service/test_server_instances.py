"""Server instances on one home: each keeps its own metrics; workers die with their arbiter."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.model_versions import mirrored_versions
from tests.service.conftest import ServiceServer, auth, write_config


def _requests_total(server: ServiceServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("servewatch_requests_total{")
    )


@pytest.fixture
def shared_home(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    home = tmp_path / "shared"
    home.mkdir()
    database_url = f"sqlite:///{home / 'store.db'}"
    upgrade(database_url)
    return home, database_url, write_config(home / "servewatch.yaml")


def test_two_servers_on_one_home_keep_their_own_metrics(
    shared_home, built_models_home, registered_models
):
    home, database_url, config = shared_home
    first = ServiceServer(
        home=home, config=config, models_home=built_models_home, database_url=database_url
    )
    second = ServiceServer(
        home=home, config=config, models_home=built_models_home, database_url=database_url
    )
    try:
        first.start()
        with first.client() as client:
            for _ in range(5):
                answer = client.post("/classify_ticket", json={"text": "refund"}, headers=auth())
                assert answer.status_code == 200
        time.sleep(1.5)  # the worker flushes its counts within a second
        assert _requests_total(first) == 5
        second.start()  # BentoML wipes its metrics directory when a server starts
        assert _requests_total(first) == 5
        assert _requests_total(second) == 0
        # The versions served are registered in the store, for monitors on other hosts.
        engine = create_store_engine(database_url)
        try:
            served = {(m.name, m.version) for m in registered_models.values()}
            assert set(mirrored_versions(engine)) == served
        finally:
            engine.dispose()
    finally:
        first.stop()
        second.stop()


def _workers(arbiter: psutil.Process) -> list[psutil.Process]:
    """Every worker process under the arbiter (the gateway's and any model service's)."""
    return [p for p in arbiter.children(recursive=True) if "worker" in " ".join(p.cmdline())]


# single: 2 workers; split: 1 gateway worker and 1 worker per model service (ticket, risk).
@pytest.mark.parametrize(("topology", "workers"), [("single", 2), ("split", 3)])
def test_workers_stop_when_their_arbiter_is_killed(
    shared_home, built_models_home, topology, workers
):
    home, database_url, config = shared_home
    server = ServiceServer(
        home=home,
        config=config,
        models_home=built_models_home,
        database_url=database_url,
        workers=2 if topology == "single" else 1,
        topology=topology,
        model_workers=1,
    )
    server.start()
    try:
        assert server.process is not None
        arbiter = psutil.Process(server.process.pid)
        running = _workers(arbiter)
        assert len(running) == workers, [p.cmdline() for p in running]
        if topology == "split":
            services = {"servewatch_ticket", "servewatch_risk"}
            assert services <= {arg for p in running for arg in p.cmdline()}
        os.kill(arbiter.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        # A worker stops gracefully, or is killed once the grace (10 s) is over.
        _gone, alive = psutil.wait_procs(running, timeout=25)
        assert alive == [], ([p.pid for p in alive], server.log_text()[-4000:])
    finally:
        server.stop()
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(server.port) in cmdline or str(home) in cmdline:
                process.kill()
