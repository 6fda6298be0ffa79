"""The model services of the split topology, as BentoML services: one per model family (and
one for the bulk route when it is isolated), each with its own workers and batchers.

The gateway (`service.app:Servewatch` with `SERVEWATCH_TOPOLOGY=split`) depends on them with
`bentoml.depends`; BentoML's arbiter starts their workers beside the gateway's and the gateway
reaches them over Unix sockets. Import after BentoML's home is set (service/app.py does).
"""

from __future__ import annotations

import asyncio
import logging
import os
from functools import partial
from typing import Any

import bentoml
from prometheus_client import REGISTRY, CollectorRegistry

from core.config import Settings
from core.contracts import model_services
from service.candidate_preload import CandidatePreload
from service.collector import settle_collector
from service.model_host import ModelHost
from service.parent_watch import die_with_parent
from service.runtime import CUDA_PROVIDER, requested_providers
from storage.engine import create_small_engine
from storage.rollouts import rollouts_in_force


def _metrics_registry() -> CollectorRegistry | None:
    # Under BentoML every service's workers write to the one multiprocess directory the
    # gateway's /metrics reads: the batches' series appear there as in the single topology.
    return None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else REGISTRY


def service_name(model_service: str) -> str:
    """The BentoML service name of a model service (`servewatch_ticket`, ...)."""
    return f"servewatch_{model_service}"


def dependency_attribute(model_service: str) -> str:
    """The gateway's attribute holding a model service (`models_ticket`, ...)."""
    return f"models_{model_service}"


def gpu_resources(settings: Settings) -> dict[str, Any] | None:
    """A GPU per model service where the CUDA provider is enabled and usable, else none."""
    if requested_providers(settings.use_cuda)[0] == CUDA_PROVIDER:
        return {"gpu": 1}
    return None


def model_service(settings: Settings, name: str, endpoints: tuple[str, ...]) -> Any:
    """The BentoML service running the models of `endpoints`."""

    class ModelService:
        def __init__(self) -> None:
            logging.getLogger("servewatch").setLevel(logging.INFO)
            die_with_parent()  # no orphan keeps serving if the arbiter is killed
            self.host = ModelHost(settings, endpoints, registry=_metrics_registry())
            self.host.load_routes()
            self.preload = candidate_preload(settings, self.host)
            settle_collector(settings.gc_young_threshold)  # as the gateway does

        @bentoml.api
        async def infer(
            self,
            endpoint: str,
            model_name: str,
            model_version: str,
            values: list[Any],
            delay_s: float = 0.0,
        ) -> dict[str, Any]:
            """Each item's output, batch size and compute seconds, or an error code."""
            return await self.host.infer(endpoint, model_name, model_version, values, delay_s)

        @bentoml.api
        def load(self, name: str, version: str) -> dict[str, Any]:
            """Load a version (a rollout's candidate) and say its provider or its problem."""
            return self.host.load(name, version).as_dict()

        @bentoml.on_shutdown
        async def shutdown(self) -> None:
            if self.preload is not None:  # waits for a poll in progress: off the event loop
                await asyncio.get_running_loop().run_in_executor(None, self.preload.close)
            await self.host.close()

    ModelService.__name__ = ModelService.__qualname__ = f"ModelService_{name}"
    config: dict[str, Any] = {
        "name": service_name(name),
        "workers": settings.model_service_workers,
        # The gateway's deadline ends a call first; this only bounds a lost one.
        "traffic": {"timeout": settings.config.limits.request_timeout_s + 5.0},
        # As in the gateway: no series and no log line of BentoML's own per request.
        "metrics": {"enabled": settings.bentoml_instrumentation},
        "logging": {"access": {"enabled": settings.bentoml_instrumentation}},
    }
    resources = gpu_resources(settings)
    if resources is not None:
        config["resources"] = resources
    return bentoml.service(**config)(ModelService)


def candidate_preload(settings: Settings, host: ModelHost) -> CandidatePreload | None:
    """Rollout candidates of the host's endpoints loaded ahead by every worker, on the rollout
    watch's interval (none when the gateway watches no rollouts)."""
    interval = settings.rollout_poll_interval_s
    if interval <= 0:
        return None
    engine = create_small_engine(settings.resolved_database_url)
    preload = CandidatePreload(
        partial(rollouts_in_force, engine),
        host.endpoints,
        load=lambda name, version: host.load(name, version).servable,
        interval_s=interval,
        release=engine.dispose,
    )
    preload.start()
    return preload


def model_service_dependencies(settings: Settings) -> dict[str, Any]:
    """The gateway's `bentoml.depends` attributes, one per model service."""
    return {
        dependency_attribute(name): bentoml.depends(model_service(settings, name, endpoints))
        for name, endpoints in model_services(isolate_bulk=settings.bulk_model_service).items()
    }
