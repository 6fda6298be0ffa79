"""The instrumented Bento service: `bentoml serve service.app:Servewatch` (or `servewatch serve`).

Three layers: the `Gateway` ASGI middleware (service/gateway.py) owns HTTP concerns and closes
each request's trace; `ServiceRuntime` (service/worker.py) owns the models, their batchers, the
metrics and the prediction log of one worker process; the `Servewatch` class here exposes the
business endpoints through BentoML. With `SERVEWATCH_TOPOLOGY=split` this class is a gateway:
its runtime (service/gateway_runtime.py) calls the model services of service/model_services.py
for inference. Only this module has import-time effects: it loads the settings, points BentoML
at its home, installs the timeout patch and registers the middleware.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, cast

from prometheus_client import REGISTRY, CollectorRegistry

from core.config import load_settings, use_bentoml_home
from core.contracts import ENDPOINT_TABLE
from service.collector import settle_collector
from service.errors import ServiceError
from service.gateway import BUSINESS_ROUTES, Gateway, RuntimeSlot
from service.instrumentation import RequestTrace
from service.parent_watch import die_with_parent
from service.schemas import (
    BulkPrediction,
    ItemPrediction,
    Prediction,
    openapi_overlay,
    request_schemas,
)
from service.worker import ServiceRuntime

SETTINGS = load_settings()
if "BENTOML_HOME" not in os.environ:  # `servewatch serve` sets it; plain `bentoml serve` may not
    use_bentoml_home(SETTINGS)

import bentoml  # noqa: E402 - BENTOML_HOME must be set first
from starlette.responses import Response  # noqa: E402

from service import bentoml_timeout  # noqa: E402

bentoml_timeout.install()

SCHEMAS = request_schemas(SETTINGS.config.limits)


def _workers() -> int:
    """Worker processes: `--arg workers=N` of `bentoml serve` (`servewatch serve --workers`)."""
    return max(1, int(getattr(bentoml.use_arguments(), "workers", 1)))


def _metrics_registry() -> CollectorRegistry | None:
    # Under BentoML, prometheus_client writes to the multiprocess directory that /metrics reads.
    return None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else REGISTRY


def _topology(cls: type[Any]) -> type[Any]:
    """In the split topology the service is a gateway that depends on the model services."""
    if SETTINGS.topology == "split":
        from service.model_services import model_service_dependencies

        for attribute, dependency in model_service_dependencies(SETTINGS).items():
            setattr(cls, attribute, dependency)
    return cls


def _runtime() -> ServiceRuntime:
    """This worker's runtime: the models here (single) or in the model services (split)."""
    if SETTINGS.topology != "split":
        return ServiceRuntime(SETTINGS, registry=_metrics_registry())
    from core.contracts import model_services
    from service.gateway_runtime import GatewayRuntime
    from service.model_services import service_name

    # Where BentoML's arbiter put each dependency (a Unix socket here), by service name.
    runner_map = json.loads(os.environ.get("BENTOML_RUNNER_MAP", "{}"))
    names = model_services(isolate_bulk=SETTINGS.bulk_model_service)
    addresses = {name: runner_map[service_name(name)] for name in names}
    return GatewayRuntime(SETTINGS, registry=_metrics_registry(), addresses=addresses)


@bentoml.service(
    name="servewatch",
    workers=_workers(),
    # BentoML's own timeout answers outside our middleware: keep it behind ours.
    traffic={"timeout": SETTINGS.config.limits.request_timeout_s + 5.0},
    # The gateway serves /metrics from the catalog's series and keeps its own access log.
    metrics={"enabled": SETTINGS.bentoml_instrumentation},
    logging={"access": {"enabled": SETTINGS.bentoml_instrumentation}},
)
@_topology
class Servewatch:
    """Support-ticket classification and account risk scoring, instrumented."""

    def __init__(self) -> None:
        logging.getLogger("servewatch").setLevel(logging.INFO)
        die_with_parent()  # no orphan keeps serving if the arbiter is killed
        self.runtime = _runtime()
        self.runtime.start()
        RuntimeSlot.runtime = self.runtime
        settle_collector(SETTINGS.gc_young_threshold)

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
