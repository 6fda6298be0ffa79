"""The models of one model-service worker (split topology): loaded, batched and run.

The gateway keeps tenants, routing and versions; a model service only hears "run these
prepared values through model M version V for endpoint E" and answers each item's output with
the size of the batch it ran in and its share of that batch's time, so the gateway stores the
same prediction rows and attributes the same compute seconds as the single topology does.

Importing it loads no settings and no BentoML (service/model_services.py wraps it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from core.config import Settings
from service.instrumentation import Instrumentation
from service.routing import Router
from service.runtime import LoadedModel, MicroBatcher, QueueFull, load_model, route_batcher

logger = logging.getLogger("servewatch.model_service")


@dataclass(frozen=True)
class ModelState:
    """What a model service says of one model version: its provider, or why it cannot serve."""

    name: str
    version: str
    provider: str | None
    problem: str | None

    @property
    def servable(self) -> bool:
        """Loaded, and its sample checked."""
        return self.provider is not None and self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "provider": self.provider,
            "problem": self.problem,
        }


class ModelHost:
    """Sessions and batchers of the model versions one model service runs."""

    def __init__(
        self,
        settings: Settings,
        endpoints: Iterable[str],
        *,
        registry: CollectorRegistry | None,
    ) -> None:
        self.settings = settings
        self.endpoints = tuple(endpoints)
        # Queue depth, batch sizes, inference time and schema failures are this process's.
        self.instrumentation = Instrumentation.create(
            enabled=settings.metrics_enabled, registry=registry, tenants=()
        )
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self._states: dict[tuple[str, str], ModelState] = {}
        self._batchers: dict[tuple[str, str, str], MicroBatcher] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ort")
        self._lock = threading.Lock()

    def load_routes(self) -> list[ModelState]:
        """Load every version the gateway may route this service's endpoints to."""
        router = Router(self.settings.config.routing)
        refs = {(ref.model, ref.version) for e in self.endpoints for ref in router.targets(e)}
        return [self.load(name, version) for name, version in sorted(refs)]

    def load(self, name: str, version: str) -> ModelState:
        """Load `name` `version` (`latest` resolved) once and check its sample."""
        from service.models.registry import get_model

        with self._lock:  # the start-up load and a rollout's load may meet
            try:
                registered = get_model(name, version, home=self.settings.bentoml_home)
            except LookupError as exc:
                return ModelState(name, version, None, str(exc))
            key = (registered.name, registered.version)
            state = self._states.get(key)
            if state is not None:
                return state
            try:
                model = load_model(
                    registered,
                    use_cuda=self.settings.use_cuda,
                    intra_op_threads=self.settings.ort_intra_op_threads,
                    inter_op_threads=self.settings.ort_inter_op_threads,
                )
                problem = model.sample_check()
            except Exception as exc:  # a broken file: said to the gateway, which won't route
                logger.exception("cannot load %s %s", name, version)
                self._states[key] = ModelState(*key, None, str(exc))
                return self._states[key]
            if problem is None:
                self._models = {**self._models, key: model}
                logger.info("loaded %s %s (%s)", *key, model.provider)
            self._states[key] = ModelState(*key, model.provider, problem)
            return self._states[key]

    def describe(self) -> list[ModelState]:
        """Every version this worker has tried to load, with its provider or its problem."""
        return list(self._states.values())

    async def infer(
        self, endpoint: str, name: str, version: str, values: list[Any], delay_s: float = 0.0
    ) -> dict[str, Any]:
        """Each item's output, batch size and compute seconds, or `{"error": code, ...}`."""
        model = self._models.get((name, version))
        if model is None:  # a rollout candidate this worker has not loaded yet
            loop = asyncio.get_running_loop()
            state = await loop.run_in_executor(None, self.load, name, version)
            model = self._models.get((name, version))
            if model is None:
                return {"error": "model_error", "message": state.problem or "not loaded"}
        if delay_s > 0:  # an injected slow model (service/faults.py)
            await asyncio.sleep(delay_s)
        try:
            scored = await self._batcher(endpoint, model).infer(values)
        except QueueFull as exc:
            return {"error": "overloaded", "message": str(exc)}
        except Exception:
            logger.exception("inference failed for %s %s", name, version)
            return {"error": "model_error", "message": "inference failed"}
        return {
            "items": [
                (
                    s.result.predicted_class,
                    s.result.confidence,
                    s.result.probabilities,
                    s.result.failure,
                    s.batch_size,
                    s.compute_seconds,
                )
                for s in scored
            ]
        }

    def _batcher(self, endpoint: str, model: LoadedModel) -> MicroBatcher:
        key = (endpoint, model.name, model.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = self._batchers[key] = route_batcher(
                model,
                self.settings.config.batching.get(endpoint),
                executor=self._executor,
                max_bulk_items=self.settings.config.limits.max_bulk_items,
                observer=self.instrumentation,
            )
        return batcher

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._executor.shutdown(wait=False)
