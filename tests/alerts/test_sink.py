"""The alert sink: the recorder keeps every notification whole, the HTTP adapter lists them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alerts.sink import (
    LOG_FILE,
    SINK_DIR,
    NotificationLog,
    RejectedNotification,
    SinkServer,
    alerts_of,
)
from tests.support.tcp_proxy import free_port

ROOT = Path(__file__).resolve().parents[2]


def _payload(name: str, status: str = "firing") -> dict[str, object]:
    """The shape of Alertmanager's webhook body (version 4), trimmed."""
    return {
        "version": "4",
        "status": status,
        "receiver": "ticket",
        "alerts": [{"status": status, "labels": {"alertname": name}, "annotations": {}}],
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_records_and_reads_back_in_order_by_receiver(tmp_path):
    log = NotificationLog(tmp_path / "sink" / "n.jsonl", clock=Clock())
    assert log.read() == []
    log.record("pager", _payload("ServewatchServiceDown"))
    log.record("ticket", _payload("ServewatchClassShift"))
    log.record("ticket", _payload("ServewatchClassShift", "resolved"))
    everything = log.read()
    assert [(n.receiver, n.payload["status"]) for n in everything] == [
        ("pager", "firing"),
        ("ticket", "firing"),
        ("ticket", "resolved"),
    ]
    assert [n.received_at for n in everything] == [
        "2025-03-01T12:00:01+00:00",
        "2025-03-01T12:00:02+00:00",
        "2025-03-01T12:00:03+00:00",
    ]
    assert [a["labels"]["alertname"] for a in alerts_of(log.read("ticket"))] == [
        "ServewatchClassShift",
        "ServewatchClassShift",
    ]


@pytest.mark.parametrize(
    ("receiver", "payload", "message"),
    [("Pager", {}, "not a receiver name"), ("a/b", {}, "not a receiver name"), ("p", [], "object")],
)
def test_refuses_what_alertmanager_never_sends(tmp_path, receiver, payload, message):
    log = NotificationLog(tmp_path / "n.jsonl")
    with pytest.raises(RejectedNotification, match=message):
        log.record(receiver, payload)
    assert log.read() == []


def test_an_append_cut_short_is_not_read_as_a_notification(tmp_path):
    log = NotificationLog(tmp_path / "n.jsonl")
    log.record("pager", _payload("A"))
    with log.path.open("a") as file:
        file.write('{"receiver": "pager", "payl')  # a crash in the middle of a write
    assert [n.payload["alerts"][0]["labels"]["alertname"] for n in log.read()] == ["A"]


def test_concurrent_appends_from_two_logs_on_one_file_never_interleave(tmp_path):
    path = tmp_path / "n.jsonl"
    logs = [NotificationLog(path), NotificationLog(path)]  # separate locks: flock must hold
    big = {"alerts": [], "padding": "x" * 70_000}  # larger than a pipe buffer or a page

    def send(log: NotificationLog, sender: int) -> None:
        for index in range(40):
            log.record("ticket", {**big, "sender": sender, "index": index})

    threads = [threading.Thread(target=send, args=(logs[i % 2], i)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = [(n.payload["sender"], n.payload["index"]) for n in NotificationLog(path).read()]
    assert sorted(found) == [(s, i) for s in range(6) for i in range(40)]
    for sender in range(6):
        assert [i for s, i in found if s == sender] == list(range(40))


@pytest.fixture
def sink(tmp_path) -> Iterator[tuple[str, NotificationLog]]:
    log = NotificationLog(tmp_path / "n.jsonl")
    server = SinkServer(("127.0.0.1", 0), log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url, log
    finally:
        server.shutdown()
        server.server_close()


def test_http_post_records_and_get_lists(sink):
    url, log = sink
    assert httpx.get(f"{url}/-/ready").status_code == 200
    assert httpx.post(f"{url}/pager", json=_payload("A")).json() == {"recorded": "pager"}
    assert httpx.post(f"{url}/ticket", json=_payload("B")).status_code == 200
    listed = httpx.get(f"{url}/notifications").json()
    assert [(n["receiver"], n["payload"]["alerts"][0]["labels"]["alertname"]) for n in listed] == [
        ("pager", "A"),
        ("ticket", "B"),
    ]
    only = httpx.get(f"{url}/notifications", params={"receiver": "ticket"}).json()
    assert [n["receiver"] for n in only] == ["ticket"]
    assert len(log.read()) == 2


def test_http_refuses_bad_requests_and_records_nothing(sink):
    url, log = sink
    bad = httpx.post(f"{url}/pager", content=b"{not json", headers={"Content-Type": "x"})
    assert bad.status_code == 400
    assert httpx.post(f"{url}/Pager", json={}).status_code == 400
    assert httpx.post(f"{url}/pager", json=[1]).status_code == 400
    huge = httpx.post(f"{url}/pager", content=b" " * ((1 << 20) + 1))
    assert huge.status_code == 400
    assert "bytes" in huge.json()["error"]
    assert httpx.get(f"{url}/elsewhere").status_code == 404
    assert log.read() == []


def test_the_command_records_under_servewatch_home_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "SERVEWATCH_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "servewatch", "alert-sink", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("alert-sink did not start in 30 s")
        httpx.post(f"{url}/ticket", json=_payload("C")).raise_for_status()
        [line] = (tmp_path / SINK_DIR / LOG_FILE).read_text().splitlines()
        assert json.loads(line)["payload"]["alerts"][0]["labels"]["alertname"] == "C"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output.decode()
    assert str(tmp_path / SINK_DIR / LOG_FILE) in output.decode()
