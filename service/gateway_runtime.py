"""The runtime of one gateway worker in the split topology: everything a `ServiceRuntime`
does (keys, routing and rollouts, metrics, the prediction log, readiness) except inference,
which the model service of the request's endpoint runs.

Importing it loads no settings and no BentoML: the Bento class hands in the model services.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from core.config import Settings
from core.contracts import ENDPOINT_NAMES, model_service_of
from service.errors import ServiceError
from service.faults import Fault
from service.instrumentation import RequestTrace
from service.model_calls import ModelService, RemoteModel
from service.runtime import LoadedModel, ModelUnavailable, Scored
from service.worker import ServiceRuntime

WARM_UP_INTERVAL_S = 0.5


class GatewayRuntime(ServiceRuntime):
    """A `ServiceRuntime` whose models run in model services (by endpoint)."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None,
        addresses: Mapping[str, str],
    ) -> None:
        self._addresses = dict(addresses)
        isolate = settings.bulk_model_service
        self._service_of = {e: model_service_of(e, isolate_bulk=isolate) for e in ENDPOINT_NAMES}
        super().__init__(settings, registry=registry)
        # The gateway's own deadline ends a call first; this only bounds a lost one.
        timeout_s = settings.config.limits.request_timeout_s + 5.0
        self.services = {
            name: ModelService(name, address, self.instrumentation, timeout_s=timeout_s)
            for name, address in self._addresses.items()
        }
        self.instrumentation.model_services(self.services)
        self._closing = threading.Event()

    def _first_evaluation(self) -> None:
        # The model services start beside this worker and may not answer yet: the checks are
        # retried on a thread until they pass, never holding up the event loop.
        threading.Thread(target=self._warm_up, name="servewatch-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        while not self._closing.is_set():
            self.readiness.evaluate()
            if self.readiness.ready:
                if self.mirror is not None:
                    self.mirror.add(model.registered for model in set(self.models.values()))
                return
            self._closing.wait(WARM_UP_INTERVAL_S)

    async def close(self) -> None:
        self._closing.set()
        await super().close()
        for service in self.services.values():
            await service.aclose()

    def _live_checks(self) -> dict[str, Callable[[], str | None]]:
        # Named after the model service, so /readyz says which one is down.
        return {f"model_service:{name}": self._probe(name) for name in self._addresses}

    def _probe(self, name: str) -> Callable[[], str | None]:
        return lambda: self.services[name].probe()

    def _open(self, registered: Any) -> LoadedModel:
        """The model as the model services that may run it loaded it (each loads it once)."""
        provider: str | None = None
        problems = []
        for service in self._services_running(registered.name):
            _, _, service_provider, problem = service.load(registered.name, registered.version)
            provider = provider or service_provider
            if problem is not None:
                problems.append(f"model service {service.name}: {problem}")
        if provider is None and not problems:
            raise ModelUnavailable(f"no model service runs {registered.name}")
        return RemoteModel(registered, provider or "none", "; ".join(problems) or None)

    def _services_running(self, model_name: str) -> list[ModelService]:
        """The model services of the endpoints routed to `model_name` (all when none is)."""
        names = {
            self._service_of[endpoint]
            for endpoint in self._service_of
            if any(ref.model == model_name for ref in self.router.targets(endpoint))
        }
        return [s for name, s in self.services.items() if name in names] or list(
            self.services.values()
        )

    async def _scored(
        self, trace: RequestTrace, model: LoadedModel, prepared: list[Any]
    ) -> list[Scored]:
        """The model service's results, within the request's deadline (and any injected
        delay, which the model service waits out as a slow model would)."""
        limit = self.settings.config.limits.request_timeout_s
        remaining = trace.started + limit - time.perf_counter()
        if remaining <= 0:
            raise ServiceError("timeout", f"no answer within {limit:g} s")
        fault: Fault | None = trace.fault
        delay_s = 0.0
        if fault is not None and fault.latency_ms and fault.hits(model.version):
            delay_s = fault.latency_ms / 1000.0
        service = self.services[self._service_of[trace.endpoint]]
        return await service.score(
            trace.endpoint, model, prepared, delay_s=delay_s, timeout_s=remaining, limit_s=limit
        )
