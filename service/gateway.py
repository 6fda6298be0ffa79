"""The `Gateway` ASGI middleware in front of BentoML's routes: HTTP concerns (request ids, API
keys, payload size, the error envelope, /livez, /readyz, /metrics); it closes each request's trace.

Only business requests reach BentoML; every other path is answered here, so no request of any
kind can add a metric series, and no page of BentoML's (with third-party scripts) is served.

Importing it loads no settings and no BentoML: it reaches the worker's runtime through a
`RuntimeSlot` the Bento class fills, so tests can drive it with any runtime.
"""

from __future__ import annotations

import asyncio
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
from service import exposition
from service.answers import (
    EnvelopeSend,
    Ids,
    Message,
    Send,
    StartTracking,
    recorded,
    send_bytes,
    send_error,
    send_json,
)
from service.auth import authenticate, authorize
from service.errors import ServiceError, describe_validation
from service.faults import FAULT_HEADER, parse_fault
from service.instrumentation import RequestTrace
from service.routing import parse_region

if TYPE_CHECKING:
    from service.worker import ServiceRuntime

logger = logging.getLogger("servewatch.service")
access_logger = logging.getLogger("servewatch.access")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

BUSINESS_ROUTES: Mapping[str, str] = {endpoint.route: endpoint.name for endpoint in ENDPOINT_TABLE}
PROBES = frozenset({"/livez", "/healthz", "/readyz", "/readyz/details", "/metrics"})
# A client's own id is kept beside ours (never instead of it: ids are unique across tenants).
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,40}")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

Receive = Callable[[], Awaitable[Message]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


def new_request_id() -> str:
    """A fresh request id: what the answer, the header and the stored row carry."""
    return os.urandom(16).hex()


def client_request_id(headers: Headers) -> str | None:
    """The client's `X-Request-ID` when well-formed (kept beside ours and echoed back)."""
    supplied = headers.get("x-request-id", "")
    return supplied if _CLIENT_REQUEST_ID.fullmatch(supplied) else None


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
        guarded = StartTracking(send)
        started = time.perf_counter()
        try:
            await self._route(scope, receive, guarded)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not guarded.started:
                await send_error(send, ServiceError("model_error"), Ids(new_request_id(), None))
        runtime = self.slot.runtime
        if runtime is not None and runtime.settings.access_log:
            _log_access(scope, guarded.status, time.perf_counter() - started)

    async def _route(self, scope: Message, receive: Receive, send: StartTracking) -> None:
        path, method = scope["path"], scope["method"]
        endpoint = BUSINESS_ROUTES.get(path)
        runtime = self.slot.runtime
        if endpoint is not None and method == "POST" and runtime is not None:
            return await self._business(runtime, endpoint, scope, receive, send)
        ids = Ids(new_request_id(), client_request_id(Headers(scope=scope)))
        if endpoint is not None:
            if method != "POST":
                error = ServiceError("not_found", "this route only answers POST", status=405)
                return await send_error(send, error, ids, {"allow": "POST"})
            return await send_error(send, ServiceError("not_ready", "the service is starting"), ids)
        own = path in PROBES or (path == "/docs.json" and self._openapi is not None)
        if not own:
            return await send_error(send, ServiceError("not_found"), ids)
        if method not in ("GET", "HEAD"):
            error = ServiceError("not_found", "this route only answers GET", status=405)
            return await send_error(send, error, ids, {"allow": "GET, HEAD"})
        if path in ("/livez", "/healthz"):
            return await send_json(send, 200, {"status": "alive"})
        if path == "/readyz":
            return await self._readyz(send, ids)
        if path == "/readyz/details":
            return await self._readyz_details(scope, send, ids)
        if path == "/metrics":
            return await self._metrics(send)
        assert self._openapi is not None
        return await send_json(send, 200, self._openapi())

    async def _readyz(self, send: Send, ids: Ids) -> None:
        """Ready or not, with check names only: details are for operators (/readyz/details)."""
        runtime = self.slot.runtime
        if runtime is None:
            return await send_error(send, ServiceError("not_ready", "starting"), ids)
        readiness = runtime.readiness
        if not readiness.ready or readiness.watching:
            await asyncio.get_running_loop().run_in_executor(None, readiness.evaluate)
        if readiness.ready:
            checks = [r.name for r in readiness.results()]
            return await send_json(send, 200, {"status": "ready", "checks": checks})
        failing = ", ".join(r.name for r in readiness.failing())
        await send_error(send, ServiceError("not_ready", f"failing checks: {failing}"), ids)

    async def _readyz_details(self, scope: Message, send: Send, ids: Ids) -> None:
        """Each check's detail, for a caller on the loopback interface or with a valid key."""
        runtime = self.slot.runtime
        if runtime is None:
            return await send_error(send, ServiceError("not_ready", "starting"), ids)
        if not _on_loopback(scope):
            try:
                authenticate(Headers(scope=scope).get("authorization"), runtime.settings.config)
            except ServiceError as error:
                return await send_error(send, error, ids)
        readiness = runtime.readiness
        await asyncio.get_running_loop().run_in_executor(None, readiness.evaluate)
        checks = {r.name: r.detail for r in readiness.results()}
        status = "ready" if readiness.ready else "not_ready"
        await send_json(send, 200 if readiness.ready else 503, {"status": status, "checks": checks})

    async def _metrics(self, send: Send) -> None:
        runtime = self.slot.runtime
        if runtime is not None:
            runtime.instrumentation.flush()  # this worker is current; others within their interval
        body, content_type = await asyncio.get_running_loop().run_in_executor(
            None, exposition.metrics_page
        )
        await send_bytes(send, 200, body, {}, content_type=content_type)

    async def _business(
        self,
        runtime: ServiceRuntime,
        endpoint: str,
        scope: Message,
        receive: Receive,
        send: StartTracking,
    ) -> None:
        headers = Headers(scope=scope)
        now = time.perf_counter()
        trace = RequestTrace(
            request_id=new_request_id(),
            client_request_id=client_request_id(headers),
            endpoint=endpoint,
            received_at=datetime.now(UTC),
            started=now,
            resumed=now,
        )
        runtime.keep_timers()
        runtime.instrumentation.request_started(endpoint)
        record = _Recording(runtime, trace)
        answer = EnvelopeSend(send, trace, record)
        try:
            body = await self._admit(runtime, trace, headers, receive)
            scope.setdefault("state", {})["servewatch"] = trace
            await self.app(scope, _replay(body, receive), answer)
            await answer.release()
        except ServiceError as error:
            trace.error = error
            await recorded(record)
            await send_error(send, error, Ids.of(trace))
        except ClientGone:
            record.abandoned = True
        except Exception:
            logger.exception("unhandled error on %s (request %s)", endpoint, trace.request_id)
            if not record.done:  # an answer recorded whole stays as it was recorded
                trace.error = ServiceError("model_error")
            if not send.started:
                await recorded(record)
                await send_error(send, ServiceError("model_error"), Ids.of(trace))
            else:  # a body it had sent whole (and recorded) still goes out
                await answer.release()
        finally:
            if record.abandoned:
                runtime.instrumentation.request_abandoned(endpoint)
            else:
                record()  # no-op when the answer's last part was preceded by it

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
        trace.pause(time.perf_counter())  # a body in several parts lets other requests run
        try:
            body = await _read_body(receive, limit)
        finally:
            trace.resume(time.perf_counter())
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


class _Recording:
    """Records a business request once: its metrics and prediction records, made (and written
    to the prediction log's journal) before the last part of its answer is sent."""

    def __init__(self, runtime: ServiceRuntime, trace: RequestTrace) -> None:
        self._runtime = runtime
        self._trace = trace
        self.done = False
        self.abandoned = False  # the client went away before the request was read

    def __call__(self) -> Awaitable[None] | None:
        """What to await before the answer goes out (its records' journal write), if anything."""
        if self.done:
            return None
        self.done = True
        try:
            return self._runtime.finish(self._trace, time.perf_counter() - self._trace.started)
        except Exception:  # a bug in recording must not also cost the client its answer
            logger.exception("could not record request %s", self._trace.request_id)
            return None


def _log_access(scope: Message, status: int, seconds: float) -> None:
    """One access-log line; the path is logged as its route or `other`, never as sent."""
    path = scope["path"]
    route = path if path in BUSINESS_ROUTES or path in PROBES or path == "/docs.json" else "other"
    method = scope["method"] if scope["method"] in _METHODS else "other"
    access_logger.info("%s %s %d %.1fms", method, route, status, seconds * 1000.0)


def _on_loopback(scope: Message) -> bool:
    client = scope.get("client")
    return client is not None and client[0] in _LOOPBACK
