"""Many replicas: 4 service replicas on loopback writing to one PostgreSQL, discovered and
scraped by a real Prometheus through the generated file_sd configuration."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from alerts.prometheus_config import SERVICE_JOB, PrometheusSpec, render, write
from storage.engine import create_store_engine
from storage.schema import predictions
from tests.conftest import require
from tests.service.conftest import ServiceServer, auth, fresh_postgres_url, write_config
from tests.support.prometheus import PrometheusServer, wait_for

pytestmark = pytest.mark.timeout(180)
REPLICAS = 4
REQUESTS = 200  # 50 per replica
TICKETS = ("I was charged twice", "The app crashes on start", "Reset my password", "Where is it")


@pytest.fixture(scope="module")
def database_url(postgres_available: bool) -> Iterator[str]:
    require(postgres_available, "PostgreSQL is not reachable")
    yield from fresh_postgres_url()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, built_models_home: Path, database_url: str
) -> Iterator[list[ServiceServer]]:
    """4 replicas, 1 worker each, each with its own home (spill, logs) and one shared store."""
    root = tmp_path_factory.mktemp("replicas")
    config = write_config(root / "servewatch.yaml")
    servers = [
        ServiceServer(
            home=root / f"replica-{index}",
            config=config,
            models_home=built_models_home,
            database_url=database_url,
        )
        for index in range(REPLICAS)
    ]
    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(lambda server: server.start(timeout=120), servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, replicas) -> Iterator[PrometheusServer]:
    """Prometheus discovering the replicas from the generated targets file."""
    workdir = tmp_path_factory.mktemp("prometheus")
    targets = tuple(f"127.0.0.1:{server.port}" for server in replicas)
    spec = PrometheusSpec(replicas=targets, rule_files=(), scrape_interval="1s")
    write(workdir, render(spec))
    server = PrometheusServer(workdir / "prometheus.yml", workdir).start()
    try:
        yield server
    finally:
        server.stop()


def _send(server: ServiceServer, ids: list[str]) -> list[int]:
    with server.client() as client:
        return [
            client.post(
                "/classify_ticket",
                json={"text": TICKETS[i % len(TICKETS)]},
                headers={**auth(), "X-Request-ID": request_id},
            ).status_code
            for i, request_id in enumerate(ids)
        ]


def _stored(database_url: str, prefix: str) -> tuple[int, int]:
    """(rows, distinct client request ids) of this test's predictions."""
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            ids = predictions.c.client_request_id
            statement = select(func.count(), func.count(ids.distinct())).where(
                ids.like(f"{prefix}-%")
            )
            rows, distinct = connection.execute(statement).one()
    finally:
        engine.dispose()
    return int(rows), int(distinct)


def test_prometheus_discovers_every_replica_and_counts_every_request(
    replicas, prometheus, database_url
):
    up = wait_for(
        lambda: (
            targets
            if len(targets := prometheus.active_targets(SERVICE_JOB)) == REPLICAS
            and all(t["health"] == "up" for t in targets)
            else None
        ),
        30,
        f"not every replica is up in prometheus: {prometheus.active_targets(SERVICE_JOB)}",
    )
    assert {t["labels"]["instance"] for t in up} == {f"127.0.0.1:{s.port}" for s in replicas}

    prefix = uuid.uuid4().hex[:10]
    ids = [f"{prefix}-{i:04d}" for i in range(REQUESTS)]
    started = time.monotonic()
    with ThreadPoolExecutor(REPLICAS) as pool:
        statuses = pool.map(_send, replicas, [ids[i::REPLICAS] for i in range(REPLICAS)])
        assert all(status == 200 for batch in statuses for status in batch)

    stored = wait_for(
        lambda: counts if (counts := _stored(database_url, prefix))[0] >= REQUESTS else None,
        30,
        f"predictions missing from the store: {_stored(database_url, prefix)}",
    )
    elapsed = time.monotonic() - started
    assert stored == (REQUESTS, REQUESTS)  # every prediction once, from all 4 replicas
    print(f"{REQUESTS} requests over {REPLICAS} replicas stored in {elapsed:.2f} s")

    total = f'sum(servewatch_requests_total{{job="{SERVICE_JOB}",outcome="ok"}})'
    wait_for(
        lambda: True if prometheus.scalar(total) == REQUESTS else None,
        20,
        f"prometheus counts {prometheus.scalar(total)} requests, not {REQUESTS}",
    )
    by_instance = prometheus.query(
        f'sum by (instance) (servewatch_requests_total{{job="{SERVICE_JOB}"}})'
    )
    assert sorted(float(r["value"][1]) for r in by_instance) == [REQUESTS / REPLICAS] * REPLICAS
