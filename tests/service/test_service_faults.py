"""The store goes away mid-traffic and comes back: every answered request still becomes a row."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from storage.engine import create_store_engine
from storage.prediction_samples import prediction_count
from storage.schema import predictions
from tests.conftest import require
from tests.service.conftest import ServiceServer, auth, fresh_postgres_url, write_config
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def direct_url(postgres_available: bool) -> Iterator[str]:
    require(postgres_available, "PostgreSQL is not reachable")
    yield from fresh_postgres_url()


def through(proxy: TcpProxy, url: str) -> str:
    parsed = make_url(url)
    return parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def send(server: ServiceServer, prefix: str, count: int) -> dict[str, int]:
    """`count` requests (some invalid); request id -> answered status. None may be left out."""
    answered = {}
    with server.client(timeout=5) as client:
        for i in range(count):
            request_id = f"{prefix}-{i:03d}"
            body = {"text": f"ticket {i} about my invoice"} if i % 5 else {"text": ""}
            start = time.monotonic()
            answer = client.post(
                "/classify_ticket", json=body, headers={**auth(), "X-Request-ID": request_id}
            )
            # The request path never waits on the store, up or down.
            assert time.monotonic() - start < 2.0
            assert answer.status_code == (200 if i % 5 else 400), answer.text
            answered[request_id] = answer.status_code
    return answered


def stored_ids(url: str, prefix: str) -> list[str]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    select(predictions.c.client_request_id).where(
                        predictions.c.client_request_id.like(f"{prefix}-%")
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def count_rows(url: str) -> int:
    engine = create_store_engine(url)
    try:
        return prediction_count(engine)
    finally:
        engine.dispose()


def test_store_outage_mid_traffic_loses_no_record(
    tmp_path: Path, built_models_home: Path, direct_url: str
):
    proxy = TcpProxy("127.0.0.1", make_url(direct_url).port or 5432).start()
    server = ServiceServer(
        home=tmp_path / "service",
        config=write_config(tmp_path / "servewatch.yaml"),
        models_home=built_models_home,
        database_url=through(proxy, direct_url),
        env={"SERVEWATCH_LOG_BATCH_SIZE": "10"},
    )
    prefix = uuid.uuid4().hex[:12]
    answered: dict[str, int] = {}
    try:
        server.start()
        answered |= send(server, f"{prefix}-before", 25)
        proxy.stop()
        answered |= send(server, f"{prefix}-during", 50)
        time.sleep(1.5)  # the writer meets the outage (and spills)
        assert count_rows(direct_url) <= 25
        proxy.start()
        answered |= send(server, f"{prefix}-after", 25)
        deadline = time.monotonic() + 30
        while len(stored_ids(direct_url, prefix)) < len(answered) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        server.stop()
        proxy.stop()
    ids = stored_ids(direct_url, prefix)
    assert len(ids) == len(set(ids)) == len(answered) == 100
    assert set(ids) == set(answered)


def test_graceful_shutdown_flushes_what_the_log_still_holds(
    tmp_path: Path, built_models_home: Path, direct_url: str
):
    server = ServiceServer(
        home=tmp_path / "service",
        config=write_config(tmp_path / "servewatch.yaml"),
        models_home=built_models_home,
        database_url=direct_url,
        # Neither the batch size nor the flush interval is reached during the test.
        env={"SERVEWATCH_LOG_FLUSH_INTERVAL_S": "120", "SERVEWATCH_LOG_BATCH_SIZE": "100000"},
    )
    prefix = uuid.uuid4().hex[:12]
    try:
        server.start()
        answered = send(server, prefix, 20)
        assert stored_ids(direct_url, prefix) == []
    finally:
        exit_code = server.stop()
    assert exit_code is not None
    assert sorted(stored_ids(direct_url, prefix)) == sorted(answered)
