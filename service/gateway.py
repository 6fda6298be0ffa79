"""The `Gateway` ASGI middleware in front of BentoML's routes: HTTP concerns (request ids, API
keys, payload size, the error envelope, /livez and /readyz); it closes each request's trace.

Importing it loads no settings and no BentoML: it reaches the worker's runtime through a
`RuntimeSlot` the Bento class fills, so tests can drive it with any runtime.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers

from core.contracts import ENDPOINT_TABLE
from service.auth import authenticate, authorize
from service.errors import ServiceError, describe_validation, render, translate
from service.faults import FAULT_HEADER, parse_fault
from service.instrumentation import RequestTrace
from service.routing import parse_region

if TYPE_CHECKING:
    from service.worker import ServiceRuntime

logger = logging.getLogger("servewatch.service")

BUSINESS_ROUTES: Mapping[str, str] = {endpoint.route: endpoint.name for endpoint in ENDPOINT_TABLE}
# Client ids are kept when safe; no ':' so that bulk item ids `<id>:<index>` stay unambiguous.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,40}")

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


def request_id_from(headers: Headers) -> str:
    """The client's `X-Request-ID` when well-formed, else a fresh one."""
    supplied = headers.get("x-request-id", "")
    if _CLIENT_REQUEST_ID.fullmatch(supplied):
        return supplied
    return os.urandom(16).hex()


class RuntimeSlot:
    """Where a worker's runtime is published for the gateway (set when the service starts)."""

    runtime: ServiceRuntime | None = None


class ClientGone(Exception):
    """The client disconnected before sending its whole request."""


class Gateway:
    """ASGI middleware in front of BentoML's routes: admission, envelope, probes, traces."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        slot: type[RuntimeSlot] = RuntimeSlot,
        schemas: Mapping[str, type[BaseModel]] | None = None,
        openapi: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.slot = slot
        self.schemas = dict(schemas or {})
        self._openapi = openapi

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        guarded = _StartTracking(send)
        try:
            await self._route(scope, receive, guarded)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not guarded.started:
                await _send_error(send, ServiceError("model_error"), os.urandom(16).hex())

    async def _route(self, scope: Message, receive: Receive, send: _StartTracking) -> None:
        path = scope["path"]
        endpoint = BUSINESS_ROUTES.get(path)
        runtime = self.slot.runtime
        if endpoint is not None and scope["method"] == "POST" and runtime is not None:
            return await self._business(runtime, endpoint, scope, receive, send)
        if path == "/metrics" and runtime is not None:
            runtime.instrumentation.flush()  # this worker is current; others within their interval
        request_id = request_id_from(Headers(scope=scope))
        own = path in ("/livez", "/healthz", "/readyz") or (
            path == "/docs.json" and self._openapi is not None
        )
        if own and scope["method"] not in ("GET", "HEAD"):
            error = ServiceError("not_found", "this route only answers GET", status=405)
            return await _send_error(send, error, request_id, {"allow": "GET, HEAD"})
        if path in ("/livez", "/healthz"):
            return await _send_json(send, 200, {"status": "alive"})
        if path == "/readyz":
            return await self._readyz(send, request_id)
        if path == "/docs.json" and self._openapi is not None:
            return await _send_json(send, 200, self._openapi())
        if endpoint is not None and scope["method"] == "POST":  # no runtime yet
            error = ServiceError("not_ready", "the service is starting")
            return await _send_error(send, error, request_id)
        # BentoML's own routes; its error answers are rewritten into the envelope.
        await self.app(scope, receive, _EnvelopeSend(send, request_id, None))

    async def _readyz(self, send: Send, request_id: str) -> None:
        runtime = self.slot.runtime
        if runtime is None:
            return await _send_error(send, ServiceError("not_ready", "starting"), request_id)
        readiness = runtime.readiness
        if not readiness.ready:
            await asyncio.get_running_loop().run_in_executor(None, readiness.evaluate)
        if readiness.ready:
            checks = {r.name: r.detail for r in readiness.results()}
            return await _send_json(send, 200, {"status": "ready", "checks": checks})
        failing = "; ".join(f"{r.name}: {r.detail}" for r in readiness.failing())
        error = ServiceError("not_ready", f"failing checks: {failing}")
        await _send_error(send, error, request_id)

    async def _business(
        self,
        runtime: ServiceRuntime,
        endpoint: str,
        scope: Message,
        receive: Receive,
        send: _StartTracking,
    ) -> None:
        headers = Headers(scope=scope)
        trace = RequestTrace(
            request_id=request_id_from(headers),
            endpoint=endpoint,
            received_at=datetime.now(UTC),
            started=time.perf_counter(),
        )
        runtime.keep_metrics_flushed()
        runtime.instrumentation.request_started(endpoint)
        answered = True
        try:
            body = await self._admit(runtime, trace, headers, receive)
            scope.setdefault("state", {})["servewatch"] = trace
            await self.app(
                scope, _replay(body, receive), _EnvelopeSend(send, trace.request_id, trace)
            )
        except ServiceError as error:
            trace.error = error
            await _send_error(send, error, trace.request_id)
        except ClientGone:
            answered = False
        except Exception:
            logger.exception("unhandled error on %s (request %s)", endpoint, trace.request_id)
            trace.error = ServiceError("model_error")
            if not send.started:
                await _send_error(send, trace.error, trace.request_id)
        finally:
            latency = time.perf_counter() - trace.started
            if answered:
                runtime.finish(trace, latency)
            else:
                runtime.instrumentation.request_abandoned(endpoint)

    async def _admit(
        self, runtime: ServiceRuntime, trace: RequestTrace, headers: Headers, receive: Receive
    ) -> bytes:
        """Checks before the body is parsed: key, tenant, size, readiness, region, route."""
        config = runtime.settings.config
        trace.tenant = authenticate(headers.get("authorization"), config)
        authorize(trace.tenant, trace.endpoint, config)
        limit = config.limits.max_payload_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        _require_json(headers.get("content-type"))
        trace.region = parse_region(headers.get("x-region"))
        if not runtime.serving:
            raise ServiceError("not_ready", "models are not loaded yet; see /readyz")
        runtime.resolve(trace)
        if runtime.settings.fault_injection:
            trace.fault = parse_fault(headers.get(FAULT_HEADER))
        body = await _read_body(receive, limit)
        self._validate(trace.endpoint, body)
        return body

    def _validate(self, endpoint: str, body: bytes) -> None:
        """Reject invalid bodies here, so BentoML only ever parses valid ones."""
        schema = self.schemas.get(endpoint)
        if schema is None:
            return
        try:
            schema.model_validate_json(body)
        except ValidationError as exc:
            details = exc.errors(include_input=False, include_context=False, include_url=False)
            raise ServiceError("validation_error", describe_validation(details)) from exc


def _require_json(content_type: str | None) -> None:
    """Only JSON bodies are accepted (a missing Content-Type is taken to be JSON)."""
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ServiceError("validation_error", "send a JSON body (Content-Type: application/json)")


def _too_large(limit: int) -> ServiceError:
    return ServiceError("payload_too_large", f"the request body exceeds {limit} bytes")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the already-read body, then defers to the real one."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class _StartTracking:
    """A `send` that remembers whether the answer has started."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class _EnvelopeSend:
    """A `send` that tags answers with X-Request-ID and turns error answers into envelopes."""

    def __init__(self, send: Send, request_id: str, trace: RequestTrace | None) -> None:
        self._send = send
        self._request_id = request_id
        self._trace = trace
        self._error_status: int | None = None
        self._kept_headers: dict[str, str] = {}
        self._held: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] >= 400:
                self._error_status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in (b"allow", b"retry-after"):
                        self._kept_headers[name.lower().decode()] = value.decode("latin-1")
                return
            message = {**message, "headers": [*message.get("headers", []), *self._id_header()]}
            return await self._send(message)
        if message["type"] != "http.response.body" or self._error_status is None:
            return await self._send(message)
        self._held.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        error = self._error(b"".join(self._held))
        await _send_error(self._send, error, self._request_id, self._kept_headers)

    def _error(self, body: bytes) -> ServiceError:
        assert self._error_status is not None
        if self._trace is not None and self._trace.error is not None:
            return self._trace.error
        error = translate(self._error_status, body)
        if self._trace is not None:
            self._trace.error = error
        return error

    def _id_header(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", self._request_id.encode())]


async def _send_json(
    send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await _send_bytes(send, status, body, headers or {})


async def _send_error(
    send: Send,
    error: ServiceError,
    request_id: str,
    extra_headers: Mapping[str, str] | None = None,
) -> None:
    headers = {**(extra_headers or {}), **error.headers, "x-request-id": request_id}
    await _send_bytes(send, error.status, render(error, request_id), headers)


async def _send_bytes(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
