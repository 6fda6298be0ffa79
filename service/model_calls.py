"""The gateway's side of the hop to a model service (split topology): its calls, their
deadline, and the error class each failure answers with.

A call that fails never becomes a bare 5xx: the model service's worker gone (connection
reset, refused) answers `overloaded` 503 with Retry-After, a call past the request's deadline
`timeout` 504, the model service's own refusals `overloaded`, anything else `model_error`.
Each call is measured (servewatch_model_call_*) whatever its end.

Importing it loads no BentoML.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from service.errors import ServiceError
from service.instrumentation import Instrumentation
from service.runtime import ItemResult, LoadedModel, ModelUnavailable, Scored

logger = logging.getLogger("servewatch.service")

PROBE_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 512  # per model service and gateway worker; beyond, calls wait for one
_RETRY = {"Retry-After": "1"}


class RemoteModel(LoadedModel):
    """A registered model whose session lives in a model service: its metadata here, its
    provider and sample check as the model service reported them."""

    def __init__(self, registered: Any, provider: str, problem: str | None) -> None:
        metadata = registered.metadata
        self.registered = registered
        self.name = registered.name
        self.version = registered.version
        self.classes = tuple(registered.classes)
        self.input_kind = metadata["input"]["kind"]
        self.features = tuple(metadata["input"].get("features", ()))
        self.session = None
        self.provider = provider
        self._problem = problem

    def predict(self, prepared: Sequence[Any]) -> Any:
        raise RuntimeError(f"{self.name} {self.version} runs in a model service")

    def sample_check(self) -> str | None:
        return self._problem


class ModelService:
    """One model service as the gateway calls it: JSON over the Unix socket (or port) that
    BentoML's arbiter gave it (`BENTOML_RUNNER_MAP`).

    Not BentoML's own dependency proxy: in 1.4.39 it renews its aiohttp session every 100 calls
    by closing the old one under the calls still in flight, and its sync side needs an anyio
    worker thread (the readiness checks and the rollout watch run on plain threads).
    """

    def __init__(
        self,
        name: str,
        address: str,
        instrumentation: Instrumentation,
        *,
        timeout_s: float,
    ) -> None:
        self.name = name
        self._instrumentation = instrumentation
        base_url, uds = _endpoint(address)
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=64)
        self._async = httpx.AsyncClient(
            base_url=base_url,
            transport=httpx.AsyncHTTPTransport(uds=uds, limits=limits),
            timeout=timeout_s,
        )
        self._sync = httpx.Client(
            base_url=base_url, transport=httpx.HTTPTransport(uds=uds), timeout=timeout_s
        )

    def probe(self) -> str | None:
        """None when the model service answers its readiness probe, else why not."""
        try:
            answer = self._sync.get("/readyz", timeout=PROBE_TIMEOUT_S)
        except httpx.TransportError as exc:
            return f"model service {self.name} does not answer ({type(exc).__name__})"
        if answer.status_code != 200:
            return f"model service {self.name} not ready ({answer.status_code})"
        return None

    def load(self, name: str, version: str) -> tuple[str, str, str | None, str | None]:
        """Have the model service load `name` `version`: (name, version, provider, problem).

        Raises ModelUnavailable when the model service does not answer.
        """
        problem = self.probe()
        if problem is not None:
            raise ModelUnavailable(problem)
        try:
            answer = self._sync.post("/load", json={"name": name, "version": version})
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"model service {self.name}: {exc!r}") from exc
        state = answer.json()
        return state["name"], state["version"], state["provider"], state["problem"]

    async def score(
        self,
        endpoint: str,
        model: LoadedModel,
        prepared: list[Any],
        *,
        delay_s: float,
        timeout_s: float,
        limit_s: float,
    ) -> list[Scored]:
        """The model service's results for `prepared`, within `timeout_s`."""
        self._instrumentation.model_call_started(self.name)
        started = time.perf_counter()
        reason: str | None = None
        body = {
            "endpoint": endpoint,
            "model_name": model.name,
            "model_version": model.version,
            "values": prepared,
            "delay_s": delay_s,
        }
        try:
            answer = await asyncio.wait_for(self._async.post("/infer", json=body), timeout_s)
            if answer.status_code != 200:
                reason = "overloaded" if answer.status_code in (429, 503) else "model_error"
                raise _refused(self.name, reason, f"answered {answer.status_code}")
            result = answer.json()
            error = result.get("error")
            if error is not None:
                reason = "overloaded" if error == "overloaded" else "model_error"
                raise _refused(self.name, reason, result.get("message"))
            return [_scored(item) for item in result["items"]]
        except (TimeoutError, httpx.TimeoutException) as exc:
            reason = "timeout"
            raise ServiceError("timeout", f"no answer within {limit_s:g} s") from exc
        except httpx.TransportError as exc:  # its worker died mid-call, or none is there
            reason = "unavailable"
            logger.warning("model service %s unavailable: %r", self.name, exc)
            message = f"model service {self.name} unavailable, retry later"
            raise ServiceError("overloaded", message, headers=_RETRY) from exc
        finally:
            seconds = time.perf_counter() - started
            self._instrumentation.model_call_finished(self.name, model, seconds, reason)

    async def aclose(self) -> None:
        await self._async.aclose()
        self._sync.close()


def _endpoint(address: str) -> tuple[str, str | None]:
    """The base URL and Unix socket path of an address in BentoML's runner map."""
    parsed = urlparse(address)
    if parsed.scheme == "file":
        return "http://model-service", unquote(parsed.path)
    if parsed.scheme == "tcp":
        return f"http://{parsed.netloc}", None
    return address, None


def _refused(service: str, reason: str, message: str | None) -> ServiceError:
    if reason == "overloaded":
        return ServiceError("overloaded", message, headers=_RETRY)
    logger.error("model service %s: %s", service, message)
    return ServiceError("model_error")


def _scored(item: Sequence[Any]) -> Scored:
    predicted_class, confidence, probabilities, failure, batch_size, compute_seconds = item
    result = ItemResult(predicted_class, confidence, probabilities, failure)
    return Scored(result, int(batch_size), float(compute_seconds))
