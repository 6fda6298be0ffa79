"""The split topology's hop under failure: a model-service worker SIGKILLed under load, a model
call past its deadline, a model service that stops answering. Against the session's split
server (a gateway and two model services with 2 workers each, PostgreSQL)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import select

from storage.engine import create_store_engine
from storage.schema import predictions
from tests.service.conftest import ServiceServer, auth
from tests.service.test_service_e2e import samples

# The session's server, in the split topology only.
pytestmark = pytest.mark.parametrize("service_server", ["split"], indirect=True)

CLIENTS = 8
KILL_AFTER_S = 1.5
LOAD_SECONDS = 5.0
ENVELOPE_CODES = {"overloaded", "model_error", "timeout"}


def model_service_workers(server: ServiceServer, name: str) -> list[psutil.Process]:
    """The worker processes of model service `name` (`ticket`, `risk`)."""
    assert server.process is not None
    arbiter = psutil.Process(server.process.pid)
    marker = f"servewatch_{name}"
    workers = []
    for process in arbiter.children(recursive=True):
        try:
            if marker in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                workers.append(process)
        except psutil.Error:  # a killed worker not reaped yet, or gone
            continue
    return workers


def stored(database_url: str, ids: set[str], timeout: float = 60.0) -> dict[str, str]:
    """Status by request id of the rows among `ids` (waits until all are there or timeout)."""
    engine = create_store_engine(database_url)
    deadline = time.monotonic() + timeout
    found: dict[str, str] = {}
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(predictions.c.request_id, predictions.c.status).where(
                        predictions.c.request_id.in_(ids)
                    )
                )
                found = {row.request_id: row.status for row in rows}
            if len(found) == len(ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)
    finally:
        engine.dispose()


def wait_ready(server: ServiceServer, timeout: float = 60.0, in_a_row: int = 10) -> None:
    """Ready on `in_a_row` fresh connections over a second or more: each lands on any gateway
    worker, and each worker warms up on its own (one ready worker says nothing of the other)."""
    deadline = time.monotonic() + timeout
    ready = 0
    while time.monotonic() < deadline:
        try:
            ok = httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            ok = False
        ready = ready + 1 if ok else 0
        if ready >= in_a_row:
            return
        time.sleep(0.1 if ok else 0.3)
    raise AssertionError(f"not ready again within {timeout} s")


def _load(url: str, stop: threading.Event, answers: list[tuple[int, dict[str, Any]]]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        i = 0
        while not stop.is_set():
            i += 1
            answer = client.post(
                "/classify_ticket", json={"text": f"ticket {i} about my invoice"}, headers=auth()
            )
            answers.append((answer.status_code, answer.json()))  # list.append is atomic


def test_a_model_service_worker_killed_under_load_answers_in_the_envelope_and_loses_nothing(
    service_server: ServiceServer, service_database_url: str
):
    server = service_server
    wait_ready(server)
    stop = threading.Event()
    answers: list[tuple[int, dict[str, Any]]] = []
    clients = [
        threading.Thread(target=_load, args=(server.url, stop, answers)) for _ in range(CLIENTS)
    ]
    victims = model_service_workers(server, "ticket")
    assert len(victims) == 2
    try:
        for client in clients:
            client.start()
        time.sleep(KILL_AFTER_S)
        answered_before_kill = len(answers)
        os.kill(victims[0].pid, signal.SIGKILL)
        time.sleep(LOAD_SECONDS - KILL_AFTER_S)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
    assert answered_before_kill > 20
    failed = [(status, body) for status, body in answers if status != 200]
    for status, body in failed:  # never a bare 5xx: each failure is in the envelope
        assert body["error"]["code"] in ENVELOPE_CODES, (status, body)
        assert status in (500, 503, 504), (status, body)
    ids = {
        body["request_id"] if status == 200 else body["error"]["request_id"]
        for status, body in answers
    }
    assert len(ids) == len(answers)
    rows = stored(service_database_url, ids)
    assert set(rows) == ids, f"{len(ids - set(rows))} of {len(ids)} answered requests not stored"
    # BentoML restarts the worker; the gateway serves through it again.
    deadline = time.monotonic() + 60
    while len(model_service_workers(server, "ticket")) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    wait_ready(server)
    with server.client() as client:
        statuses = [
            client.post("/classify_ticket", json={"text": "refund"}, headers=auth()).status_code
            for _ in range(20)
        ]
    assert statuses == [200] * 20


def test_a_model_call_past_its_deadline_answers_timeout_and_is_recorded(
    service_server: ServiceServer, service_database_url: str
):
    server = service_server
    wait_ready(server)
    errors = "servewatch_model_call_errors_total"
    key = (("model_name", "ticket_classifier"), ("reason", "timeout"), ("service", "ticket"))
    before = samples(httpx.get(f"{server.url}/metrics", timeout=10).text, errors).get(key, 0.0)
    with server.client() as client:
        start = time.monotonic()
        answer = client.post(
            "/classify_ticket",
            json={"text": "slow"},
            headers={**auth(), "X-Servewatch-Fault": "latency=4000"},
        )
        elapsed = time.monotonic() - start
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "timeout"
    assert 1.5 < elapsed < 3.5  # request_timeout_s is 2 in the test config; the model takes 4
    request_id = answer.json()["error"]["request_id"]
    assert stored(service_database_url, {request_id}) == {request_id: "timeout"}
    deadline = time.monotonic() + 10  # metrics are flushed every second
    after = before
    while after <= before and time.monotonic() < deadline:
        after = samples(httpx.get(f"{server.url}/metrics", timeout=10).text, errors).get(key, 0.0)
        time.sleep(0.3)
    assert after == before + 1


@contextmanager
def stopped(workers: list[psutil.Process]) -> Iterator[None]:
    """The workers frozen (SIGSTOP): alive to BentoML, answering nothing, until the end."""
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)


def test_readyz_names_a_model_service_that_is_down(service_server: ServiceServer):
    server = service_server
    wait_ready(server)
    request_id = uuid.uuid4().hex[:16]
    with stopped(model_service_workers(server, "risk")):
        deadline = time.monotonic() + 20
        answer = httpx.get(f"{server.url}/readyz", timeout=10)
        while answer.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.3)
            answer = httpx.get(f"{server.url}/readyz", timeout=10)
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "not_ready"
        assert "model_service:risk" in error["message"]
        assert "model_service:ticket" not in error["message"]
        details = httpx.get(f"{server.url}/readyz/details", timeout=10).json()
        assert details["status"] == "not_ready"
        assert details["checks"]["model_service:ticket"] == "ok"
        # The other family still serves.
        ticket = httpx.post(
            f"{server.url}/classify_ticket",
            json={"text": "refund"},
            headers={**auth(), "X-Request-ID": request_id},
            timeout=10,
        )
        assert ticket.status_code == 200
    wait_ready(server, timeout=30)
