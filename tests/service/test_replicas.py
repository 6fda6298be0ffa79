"""Many replicas: 4 service replicas on loopback writing to one PostgreSQL, discovered and
scraped by a real Prometheus through the generated file_sd configuration."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import func, select

from alerts.prometheus_config import SERVICE_JOB, PrometheusSpec, render, write
from core.config import AppConfig
from core.contracts import MONITOR_NAMES
from core.timeutil import aligned_end
from monitors.baselines import BaselineStore
from monitors.exporter import MonitorExporter
from monitors.scheduler import Scheduler
from storage.engine import create_store_engine
from storage.locks import monitor_lock
from storage.schema import predictions
from tests.conftest import require
from tests.service.conftest import ServiceServer, auth, fresh_postgres_url, write_config
from tests.support.prometheus import PrometheusServer, wait_for

pytestmark = pytest.mark.timeout(180)
REPLICAS = 4
REQUESTS = 200  # 50 per replica
RESULT_SERIES = (
    "servewatch_monitor_value{",
    "servewatch_monitor_status{",
    "servewatch_monitor_sample_size{",
)
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


def _stored(database_url: str, prefix: str = "") -> tuple[int, int]:
    """(rows, distinct client request ids) of the predictions whose ids start with `prefix`."""
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            ids = predictions.c.client_request_id
            statement = select(func.count(), func.count(ids.distinct())).where(
                ids.like(f"{prefix}%")
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
    ids = [f"{prefix}-{i:04d}" for i in range(REQUESTS)]  # prefix: no other test's ids
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


def test_a_scheduler_pair_exports_the_same_results_of_the_replicas_traffic(replicas, database_url):
    """After the replicas' traffic, two schedulers on the store, each running some monitors."""
    prefix = uuid.uuid4().hex[:10]
    with ThreadPoolExecutor(REPLICAS) as pool:
        ids = [f"{prefix}-{i:04d}" for i in range(40)]
        list(pool.map(_send, replicas, [ids[i::REPLICAS] for i in range(REPLICAS)]))
    wait_for(lambda: True if _stored(database_url, prefix)[0] >= len(ids) else None, 30, "rows")
    config = AppConfig()
    every = config.monitors.schedules["confidence_drift"].every_seconds
    now = aligned_end(time.time(), every) + every + 1  # the window holds all of this traffic
    engine = create_store_engine(database_url)
    registries = CollectorRegistry(), CollectorRegistry()
    pair = [
        Scheduler(
            engine,
            config,
            MonitorExporter(registry, config),
            clock=lambda: now,
            baselines=BaselineStore(engine, registry=lambda name, version: None),
        )
        for registry in registries
    ]
    try:
        with monitor_lock(engine, MONITOR_NAMES[0]) as held:
            assert held
            first = {r.monitor for r in pair[0].tick()}
        second = {r.monitor for r in pair[1].tick()}
        pair[0].tick()
    finally:
        engine.dispose()
    assert MONITOR_NAMES[0] in second
    assert MONITOR_NAMES[0] not in first
    assert set(MONITOR_NAMES) == first | second
    series = [
        sorted(
            line
            for line in generate_latest(registry).decode().splitlines()
            if line.startswith(RESULT_SERIES)
        )
        for registry in registries
    ]
    assert series[0] == series[1]
    assert any(f'monitor="{MONITOR_NAMES[0]}"' in line for line in series[0])
    every_row = {
        "monitor": "schema_failures",
        "metric": "failure_rate",
        "model_name": "ticket_classifier",
        "tenant": "*",
    }
    sizes = [
        sum(
            s.value
            for family in registry.collect()
            for s in family.samples
            if s.name == "servewatch_monitor_sample_size" and every_row.items() <= s.labels.items()
        )
        for registry in registries
    ]
    assert sizes == [_stored(database_url)[0]] * 2  # every stored prediction, in both
