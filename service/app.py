"""The instrumented Bento service: `bentoml serve service.app:Servewatch` (or `servewatch serve`).

Three layers: the `Gateway` ASGI middleware owns HTTP concerns (request ids, API keys, payload
size, the error envelope, /livez and /readyz) and closes each request's trace; `ServiceRuntime`
owns the models, their batchers, the metrics and the prediction log of one worker process; the
`Servewatch` class exposes the business endpoints through BentoML.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import BaseModel, ValidationError

from core.catalog import OTHER
from core.config import Settings, load_settings, use_bentoml_home
from core.contracts import ENDPOINT_TABLE
from service.auth import authenticate, authorize
from service.errors import ServiceError, describe_validation, render, translate
from service.faults import FAULT_HEADER, Fault, parse_fault
from service.instrumentation import Instrumentation, ItemOutcome, RequestTrace, prediction_rows
from service.readiness import Readiness
from service.routing import Router, parse_region
from service.runtime import (
    InputMismatch,
    LoadedModel,
    MicroBatcher,
    QueueFull,
    Scored,
    load_model,
    requested_providers,
)
from service.schemas import (
    BulkPrediction,
    ItemPrediction,
    Prediction,
    openapi_overlay,
    request_schemas,
)
from storage.probe import StoreProbe

SETTINGS = load_settings()
if "BENTOML_HOME" not in os.environ:  # `servewatch serve` sets it; plain `bentoml serve` may not
    use_bentoml_home(SETTINGS)

import bentoml  # noqa: E402 - BENTOML_HOME must be set first
from starlette.datastructures import Headers  # noqa: E402
from starlette.responses import Response  # noqa: E402

from service import bentoml_timeout  # noqa: E402

logger = logging.getLogger("servewatch.service")
bentoml_timeout.install()

BUSINESS_ROUTES: Mapping[str, str] = {endpoint.route: endpoint.name for endpoint in ENDPOINT_TABLE}
# Client ids are kept when safe; no ':' so that bulk item ids `<id>:<index>` stay unambiguous.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,40}")
# Items a batcher may hold, in batches of its route's size, before it sheds load.
QUEUE_BATCHES = 64
SERVING_CHECKS = ("models", "sample")

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


class ServiceRuntime:
    """Models, batchers, metrics and prediction log of one worker process."""

    def __init__(self, settings: Settings, *, registry: CollectorRegistry | None) -> None:
        config = settings.config
        self.settings = settings
        self.router = Router(config.routing)
        self.instrumentation = Instrumentation.create(
            enabled=settings.metrics_enabled,
            registry=registry,
            tenants=config.tenants,
            flush_interval_s=settings.metrics_flush_interval_s,
        )
        self._metrics_flusher: asyncio.TimerHandle | None = None
        self.models: dict[tuple[str, str], LoadedModel] = {}
        self._batchers: dict[tuple[str, str, str], MicroBatcher] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ort")
        self._store_check = StoreProbe(settings.resolved_database_url)
        checks: dict[str, Callable[[], str | None]] = {
            "models": self._load_models,
            "provider": self._check_providers,
            "sample": self._check_samples,
        }
        if settings.prediction_log_enabled:  # without a log the service needs no store
            checks["store"] = self._store_check
        self.readiness = Readiness(checks)
        self._serving = False
        self.log = self._prediction_log() if settings.prediction_log_enabled else None
        self._redact = self._redactor()

    def start(self) -> None:
        """Start the prediction log and run the start-up checks once."""
        if self.log is not None:
            self.log.start()
        self.readiness.evaluate()

    def keep_metrics_flushed(self) -> None:
        """Write buffered metric updates every flush interval, on the running event loop."""
        if self._metrics_flusher is None and self.instrumentation.buffered:
            loop = asyncio.get_running_loop()
            interval = self.instrumentation.flush_interval_s
            self._metrics_flusher = loop.call_later(interval, self._flush_metrics, loop, interval)

    def _flush_metrics(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.instrumentation.flush()
        self._metrics_flusher = loop.call_later(interval, self._flush_metrics, loop, interval)

    async def close(self) -> None:
        """Stop batching and flush the metrics and the prediction log (what can't be written
        stays spilled)."""
        for batcher in self._batchers.values():
            await batcher.close()
        if self._metrics_flusher is not None:
            self._metrics_flusher.cancel()
        self.instrumentation.flush()
        loop = asyncio.get_running_loop()
        if self.log is not None:
            await loop.run_in_executor(None, self.log.close)
        self._executor.shutdown(wait=False)
        self._store_check.close()

    @property
    def serving(self) -> bool:
        """Whether business requests can be answered (models loaded, samples right)."""
        if not self._serving:  # passed checks are never re-run, so this only turns on
            results = {r.name: r.ok for r in self.readiness.results()}
            self._serving = all(results.get(name, False) for name in SERVING_CHECKS)
        return self._serving

    def _prediction_log(self) -> Any:
        from service.prediction_log import PredictionLog

        s = self.settings
        return PredictionLog(
            s.resolved_database_url,
            s.spill_dir,  # shared by the workers: the log names its files per process
            queue_size=s.log_queue_size,
            batch_size=s.log_batch_size,
            flush_interval_s=s.log_flush_interval_s,
            metrics=self.instrumentation.metrics,
        )

    def _redactor(self) -> Callable[[str], str]:
        redaction = self.settings.config.redaction
        if not redaction.store_raw_inputs:
            return str
        from service.redaction import Redactor

        return Redactor(redaction.patterns).redact

    # -- start-up checks -------------------------------------------------------------------

    def _load_models(self) -> str | None:
        from service.models.registry import get_model

        problems = []
        for ref in self.router.targets():
            if (ref.model, ref.version) in self.models:
                continue
            try:
                registered = get_model(ref.model, ref.version)
            except LookupError as exc:
                problems.append(f"{ref.model}@{ref.version}: {exc}")
                continue
            loaded = self._loaded(registered.name, registered.version)
            if loaded is None:
                loaded = load_model(
                    registered,
                    use_cuda=self.settings.use_cuda,
                    intra_op_threads=self.settings.ort_intra_op_threads,
                    inter_op_threads=self.settings.ort_inter_op_threads,
                )
                self.instrumentation.model_loaded(loaded)
            self.models[(ref.model, ref.version)] = loaded
        return "; ".join(problems) or None

    def _loaded(self, name: str, version: str) -> LoadedModel | None:
        for model in self.models.values():
            if (model.name, model.version) == (name, version):
                return model
        return None

    def _check_providers(self) -> str | None:
        if not self.models:
            return "no model loaded"
        expected = requested_providers(self.settings.use_cuda)[0]
        wrong = [
            f"{m.name} {m.version} runs on {m.provider}, {expected} was expected"
            for m in set(self.models.values())
            if m.provider != expected
        ]
        return "; ".join(wrong) or None

    def _check_samples(self) -> str | None:
        if len(self.models) < len(self.router.targets()):
            return "models not loaded"
        problems = []
        for model in set(self.models.values()):
            problem = model.sample_check()
            if problem is not None:
                problems.append(f"{model.name} {model.version}: {problem}")
        return "; ".join(problems) or None

    # -- requests --------------------------------------------------------------------------

    def resolve(self, trace: RequestTrace) -> LoadedModel:
        """Route the request and attach the serving model to its trace."""
        ref = self.router.route(trace.endpoint, trace.tenant, trace.region)
        model = self.models.get((ref.model, ref.version))
        if model is None:
            trace.model_name = ref.model
            raise ServiceError("not_ready", f"model {ref.model}@{ref.version} is not loaded")
        trace.routed_to(model)
        return model

    def finish(self, trace: RequestTrace, latency_s: float) -> None:
        """Metrics and prediction records of an answered request."""
        if trace.model_name == OTHER:
            self._label_unrouted(trace)
        outcome = trace.error.code if trace.error is not None else "ok"
        self.instrumentation.request_finished(trace, outcome, latency_s)
        if self.log is not None:  # the log's writer thread makes (and redacts) the records
            self.log.submit_later(self._rows_of, trace, outcome, latency_s)

    def _rows_of(self, trace: RequestTrace, outcome: str, latency_s: float) -> list[list[Any]]:
        return prediction_rows(
            trace,
            outcome,
            latency_s,
            store_raw_inputs=self.settings.config.redaction.store_raw_inputs,
            redact=self._redact,
            error_message=trace.error.message if trace.error is not None else None,
        )

    def _label_unrouted(self, trace: RequestTrace) -> None:
        tenant = trace.tenant if trace.tenant in self.settings.config.tenants else None
        try:
            ref = self.router.route(trace.endpoint, tenant, trace.region)
        except ServiceError:
            return
        model = self.models.get((ref.model, ref.version))
        if model is not None:
            trace.routed_to(model)
        else:
            trace.model_name = ref.model

    async def infer(self, trace: RequestTrace, values: Sequence[Any]) -> list[ItemOutcome]:
        """Run `values` through the routed model's batcher; output-schema failures raise."""
        model = trace.model
        if model is None:
            raise ServiceError("not_ready", f"model {trace.model_name} is not loaded")
        try:
            prepared = [model.prepare(value) for value in values]
        except InputMismatch as exc:
            raise ServiceError("validation_error", str(exc), status=422) from exc
        limit = self.settings.config.limits.request_timeout_s
        deadline = trace.started + limit
        fault: Fault | None = trace.fault
        if fault is not None and fault.latency_ms:
            await _slow_down(fault.latency_ms / 1000.0, deadline, limit)
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise ServiceError("timeout", f"no answer within {limit:g} s")
        try:
            batcher = self._batcher(trace.endpoint, model)
            scored = await asyncio.wait_for(batcher.infer(prepared), remaining)
        except QueueFull as exc:
            raise ServiceError("overloaded", str(exc), headers={"Retry-After": "1"}) from exc
        except TimeoutError as exc:
            raise ServiceError("timeout", f"no answer within {limit:g} s") from exc
        except Exception as exc:
            logger.exception("inference failed (request %s)", trace.request_id)
            raise ServiceError("model_error") from exc
        trace.items = [_outcome(s, value) for s, value in zip(scored, values, strict=True)]
        failures = sorted({s.result.failure for s in scored if s.result.failure is not None})
        if failures:
            raise ServiceError(
                "model_error", "the model's output broke the output schema: " + ", ".join(failures)
            )
        if fault is not None and fault.error is not None:
            raise ServiceError(fault.error, "injected fault")
        return trace.items

    def route_features(self, endpoint: str) -> tuple[str, ...] | None:
        """The feature names every model `endpoint` may route to takes, if they agree."""
        refs = self.router.targets(endpoint)
        models = [self.models.get((ref.model, ref.version)) for ref in refs]
        feature_sets = {m.features for m in models if m is not None}
        if None in models or len(feature_sets) != 1:
            return None
        return feature_sets.pop() or None

    def _batcher(self, endpoint: str, model: LoadedModel) -> MicroBatcher:
        key = (endpoint, model.name, model.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            policy = self.settings.config.batching.get(endpoint)
            size = policy.max_batch_size if policy else 1
            latency_s = (policy.max_latency_ms if policy else 1) / 1000.0
            batcher = MicroBatcher(
                model,
                max_batch_size=size,
                max_latency_s=latency_s,
                executor=self._executor,
                max_queue=max(size * QUEUE_BATCHES, self.settings.config.limits.max_bulk_items),
                observer=self.instrumentation,
            )
            self._batchers[key] = batcher
        return batcher


async def _slow_down(seconds: float, deadline: float, limit: float) -> None:
    """An injected slow model: wait, but never past the request's deadline."""
    await asyncio.sleep(max(0.0, min(seconds, deadline - time.perf_counter())))
    if time.perf_counter() >= deadline:
        raise ServiceError("timeout", f"no answer within {limit:g} s")


def _outcome(scored: Scored, raw_input: Any) -> ItemOutcome:
    result = scored.result
    return ItemOutcome(
        predicted_class=result.predicted_class,
        confidence=result.confidence,
        probabilities=result.probabilities,
        batch_size=scored.batch_size,
        compute_seconds=scored.compute_seconds,
        raw_input=raw_input,
    )


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


# -- the BentoML service -------------------------------------------------------------------

SCHEMAS = request_schemas(SETTINGS.config.limits)


def _workers() -> int:
    """Worker processes: `--arg workers=N` of `bentoml serve` (`servewatch serve --workers`)."""
    return max(1, int(getattr(bentoml.use_arguments(), "workers", 1)))


def _metrics_registry() -> CollectorRegistry | None:
    # Under BentoML, prometheus_client writes to the multiprocess directory that /metrics reads.
    return None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else REGISTRY


@bentoml.service(
    name="servewatch",
    workers=_workers(),
    # BentoML's own timeout answers outside our middleware: keep it behind ours.
    traffic={"timeout": SETTINGS.config.limits.request_timeout_s + 5.0},
)
class Servewatch:
    """Support-ticket classification and account risk scoring, instrumented."""

    def __init__(self) -> None:
        logging.getLogger("servewatch").setLevel(logging.INFO)
        self.runtime = ServiceRuntime(SETTINGS, registry=_metrics_registry())
        self.runtime.start()
        RuntimeSlot.runtime = self.runtime
        # Everything alive now (BentoML, models, schemas) lives as long as the worker: keep it
        # out of the collector's full passes, which otherwise show up as latency spikes.
        gc.freeze()

    @bentoml.api(route="/classify_ticket", input_spec=SCHEMAS.ticket, output_spec=Prediction)
    async def classify_ticket(self, text: str, ctx: bentoml.Context) -> Prediction:
        """Classify one support ticket."""
        return await _answer(ctx, self._single, text)

    @bentoml.api(route="/classify_tickets", input_spec=SCHEMAS.tickets, output_spec=BulkPrediction)
    async def classify_tickets(self, tickets: list[str], ctx: bentoml.Context) -> BulkPrediction:
        """Classify support tickets in bulk (bigger batches, longer batching wait)."""
        return await _answer(ctx, self._bulk, tickets)

    @bentoml.api(route="/predict_risk", input_spec=SCHEMAS.risk, output_spec=Prediction)
    async def predict_risk(self, features: dict[str, float], ctx: bentoml.Context) -> Prediction:
        """Score the risk class of one account from its named features."""
        return await _answer(ctx, self._single, features)

    @bentoml.on_shutdown
    async def shutdown(self) -> None:
        RuntimeSlot.runtime = None
        await self.runtime.close()

    async def _single(self, trace: RequestTrace, value: Any) -> Prediction:
        (item,) = await self.runtime.infer(trace, [value])
        return Prediction(
            request_id=trace.request_id,
            model_name=trace.model_name,
            model_version=trace.model_version,
            predicted_class=item.predicted_class or "",
            confidence=item.confidence or 0.0,
            probabilities=item.probabilities or {},
        )

    async def _bulk(self, trace: RequestTrace, tickets: list[str]) -> BulkPrediction:
        items = await self.runtime.infer(trace, tickets)
        return BulkPrediction(
            request_id=trace.request_id,
            model_name=trace.model_name,
            model_version=trace.model_version,
            predictions=[
                ItemPrediction(
                    request_id=f"{trace.request_id}:{index}",
                    predicted_class=item.predicted_class or "",
                    confidence=item.confidence or 0.0,
                    probabilities=item.probabilities or {},
                )
                for index, item in enumerate(items)
            ],
        )


async def _answer(
    ctx: Any, handler: Callable[[RequestTrace, Any], Awaitable[Any]], value: Any
) -> Any:
    """Run a handler; its ServiceError becomes an error answer the gateway renders."""
    trace: RequestTrace = ctx.request.state.servewatch
    try:
        return await handler(trace, value)
    except ServiceError as error:
        trace.error = error
        ctx.response.status_code = error.status
        return Response(status_code=error.status)


def _openapi() -> dict[str, Any]:
    runtime = RuntimeSlot.runtime
    features = runtime.route_features("predict_risk") if runtime is not None else None
    spec = cast(Any, Servewatch).openapi_spec.asdict()
    return openapi_overlay(spec, BUSINESS_ROUTES, risk_features=features)


cast(Any, Servewatch).add_asgi_middleware(
    Gateway,
    schemas={endpoint.name: getattr(SCHEMAS, endpoint.payload) for endpoint in ENDPOINT_TABLE},
    openapi=_openapi,
)
