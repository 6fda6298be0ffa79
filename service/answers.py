"""What the gateway sends: the ids an answer carries, error envelopes, and a `send` that rewrites
BentoML's error answers into the envelope."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import ServiceError, render, translate
from service.instrumentation import RequestTrace

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
# Records a request; what it returns (if anything) must be awaited before the answer goes out.
Record = Callable[[], Awaitable[None] | None]


async def recorded(record: Record) -> None:
    """Record the request and wait until its records may precede the answer."""
    waiting = record()
    if waiting is not None:
        await waiting


class StartTracking:
    """A `send` that remembers whether the answer has started, and its status."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        await self._send(message)


@dataclass(frozen=True)
class Ids:
    """The ids an answer carries: ours, and the client's own when it sent a well-formed one."""

    request_id: str
    client_request_id: str | None

    @classmethod
    def of(cls, trace: RequestTrace) -> Ids:
        return cls(trace.request_id, trace.client_request_id)

    def headers(self) -> dict[str, str]:
        headers = {"x-request-id": self.request_id}
        if self.client_request_id is not None:
            headers["x-client-request-id"] = self.client_request_id
        return headers


class EnvelopeSend:
    """A `send` that tags a business answer with its ids, turns an error answer from BentoML
    into the envelope, and records the request before any of the answer's body goes out.

    Recording before the first part, not the last: a body sent in parts can be complete at the
    client (its Content-Length reached) before the final, empty part, and a worker killed in
    between would have answered a request that its journal never saw.

    When the records must be journaled first, the body is held and `release()` (called by the
    gateway once the app has returned) waits for the journal and sends it. The request then
    waits at the top of its stack, not at the bottom of BentoML's: the step after the write
    resumes a few frames instead of ~20 (docs/benchmarks.md, session 12)."""

    def __init__(self, send: Send, trace: RequestTrace, record: Record) -> None:
        self._send = send
        self._trace = trace
        self._record = record
        self._error_status: int | None = None
        self._kept_headers: dict[str, str] = {}
        self._error_body: list[bytes] = []  # an error answer, held until it is whole
        self._recorded = False
        self._journaled: Awaitable[None] | None = None  # what the held body waits for
        self._held_body: list[Message] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] >= 400:
                self._error_status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in (b"allow", b"retry-after"):
                        self._kept_headers[name.lower().decode()] = value.decode("latin-1")
                return
            ids = [(k.encode(), v.encode()) for k, v in Ids.of(self._trace).headers().items()]
            message = {**message, "headers": [*message.get("headers", []), *ids]}
            return await self._send(message)
        if message["type"] != "http.response.body":
            return await self._send(message)
        if self._error_status is None:
            if not self._recorded:
                self._recorded = True
                self._journaled = self._record()
            if self._journaled is not None:
                self._held_body.append(message)
                return None
            return await self._send(message)
        self._error_body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        error = self._error(b"".join(self._error_body))
        await recorded(self._record)
        await send_error(self._send, error, Ids.of(self._trace), self._kept_headers)

    async def release(self) -> None:
        """Send the body held back for the journal, once its records are written."""
        journaled, self._journaled = self._journaled, None
        if journaled is None:
            return
        await journaled
        held, self._held_body = self._held_body, []
        for message in held:
            await self._send(message)

    def _error(self, body: bytes) -> ServiceError:
        assert self._error_status is not None
        if self._trace.error is None:
            self._trace.error = translate(self._error_status, body)
        return self._trace.error


async def send_json(
    send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send_bytes(send, status, body, headers or {})


async def send_error(
    send: Send,
    error: ServiceError,
    ids: Ids,
    extra_headers: Mapping[str, str] | None = None,
) -> None:
    headers = {**(extra_headers or {}), **error.headers, **ids.headers()}
    await send_bytes(send, error.status, render(error, ids.request_id), headers)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    content_type: str = "application/json",
) -> None:
    raw = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
