"""`servewatch alert-sink`: a webhook receiver that records every notification it gets.

A pure recorder (`NotificationLog`: JSON lines, each appended in one write under a lock) behind
a thin stdlib HTTP adapter: `POST /<receiver>` records the JSON body Alertmanager sends,
`GET /notifications[?receiver=NAME]` lists what was recorded, oldest first, and `GET /-/ready`
answers 200. The local stack routes its receivers here, so a person (or a test) can see which
alerts really reached someone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

SINK_DIR = "alert-sink"  # under SERVEWATCH_HOME
LOG_FILE = "notifications.jsonl"
MAX_BODY_BYTES = 1 << 20
_RECEIVER = re.compile(r"[a-z][a-z0-9_-]*")


class RejectedNotification(ValueError):
    """The request is not a notification the sink records; the message says why."""


@dataclass(frozen=True)
class Notification:
    """One notification as received: when, for which receiver, and Alertmanager's payload."""

    received_at: str
    receiver: str
    payload: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


class NotificationLog:
    """Notifications appended to a JSON-lines file, and read back."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = _now) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()

    def record(self, receiver: str, payload: object) -> Notification:
        """Append one notification; refuse a receiver name or payload Alertmanager never sends."""
        if not _RECEIVER.fullmatch(receiver):
            raise RejectedNotification(f"{receiver!r} is not a receiver name")
        if not isinstance(payload, dict):
            raise RejectedNotification("the body must be a JSON object")
        notification = Notification(self._clock().isoformat(), receiver, payload)
        self._append((json.dumps(asdict(notification), sort_keys=True) + "\n").encode())
        return notification

    def _append(self, line: bytes) -> None:
        # One write with O_APPEND under an exclusive lock: lines of concurrent requests, or of
        # two sinks sharing a home, never interleave.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

    def read(self, receiver: str | None = None) -> list[Notification]:
        """Every complete notification, oldest first (only `receiver`'s when given)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        # A last line without its newline is an append cut short by a crash: not a notification.
        lines = text.split("\n")[:-1]
        found = [Notification(**json.loads(line)) for line in lines if line]
        return [n for n in found if receiver is None or n.receiver == receiver]


class _Handler(BaseHTTPRequestHandler):
    server: SinkServer

    def do_POST(self) -> None:
        receiver = urlsplit(self.path).path.strip("/")
        try:
            payload = json.loads(self._body())
            self.server.notifications.record(receiver, payload)
        except (RejectedNotification, ValueError) as exc:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._answer(HTTPStatus.OK, {"recorded": receiver})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/-/ready":
            self._answer(HTTPStatus.OK, {"ready": True})
        elif url.path == "/notifications":
            receiver = parse_qs(url.query).get("receiver", [None])[0]
            found = self.server.notifications.read(receiver)
            self._answer(HTTPStatus.OK, [asdict(n) for n in found])
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": "GET /notifications or /-/ready"})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise RejectedNotification(f"body over {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _answer(self, status: HTTPStatus, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class SinkServer(ThreadingHTTPServer):
    """The HTTP adapter over a `NotificationLog`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], notifications: NotificationLog) -> None:
        super().__init__(address, _Handler)
        self.notifications = notifications

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def sink_log(home: Path) -> NotificationLog:
    """The notification log of a servewatch home."""
    return NotificationLog(home / SINK_DIR / LOG_FILE)


def alerts_of(notifications: list[Notification]) -> list[Mapping[str, Any]]:
    """Every alert the notifications carried, in order (Alertmanager's `alerts` entries)."""
    return [alert for n in notifications for alert in n.payload.get("alerts", [])]
