"""What is observed about each request: the catalog's service metrics and the prediction records.

Label values are bounded: tenants outside the config, unknown endpoints, models and classes all
become `catalog.OTHER`, so probes, 404s and bad keys cannot create series.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram

from core.catalog import MODEL_CALL_ERROR_REASONS, OTHER, SERVICE_METRICS
from core.contracts import ENDPOINT_NAMES, OUTCOMES
from core.metrics import create_metrics
from service.errors import ServiceError
from service.metric_buffer import MetricBuffer
from service.runtime import SCHEMA_FAILURE_REASONS, BatchResult, LoadedModel

_COMPUTE_SECONDS = operator.attrgetter("compute_seconds")
_MAX_CACHED_SERIES = 4096


class ModelLabels(Protocol):
    """What the metrics need to know of a loaded model (runtime.LoadedModel has it)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def classes(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class ItemOutcome:
    """One inferred item of a request (failed items have no class)."""

    predicted_class: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    batch_size: int
    compute_seconds: float
    raw_input: Any = None


@dataclass
class RequestTrace:
    """One business request as it goes through the service; filled in as facts become known."""

    request_id: str
    endpoint: str
    received_at: datetime
    started: float
    tenant: str = OTHER
    region: str | None = None
    model_name: str = OTHER
    model_version: str = OTHER
    resource_class: str | None = None
    items: list[ItemOutcome] = field(default_factory=list)
    error: ServiceError | None = None
    model: LoadedModel | None = field(default=None, repr=False)
    fault: Any = None  # a service.faults.Fault when fault injection is on
    client_request_id: str | None = None  # the client's X-Request-ID, when well-formed
    # Its own work on the event loop: the segments it ran (perf_counter), its waits left out.
    work_s: float = 0.0
    resumed: float = 0.0  # when its running segment began (inf while it waits)
    busy_seconds: float = 0.0  # the worker's CPU seconds charged to it (service.busy_share)

    def pause(self, now: float) -> None:
        """It waits (for its body, for inference): meanwhile the loop serves other requests."""
        self.work_s += max(0.0, now - self.resumed)
        self.resumed = math.inf

    def resume(self, now: float) -> None:
        self.resumed = now

    def work_until(self, now: float) -> float:
        """Its own time on the event loop up to `now`, waits left out."""
        return self.work_s + max(0.0, now - self.resumed)

    def routed_to(self, model: LoadedModel) -> None:
        self.model = model
        self.model_name = model.name
        self.model_version = model.version
        self.resource_class = model.resource_class


class _Children:
    """A metric's children by label values, looked up once (label sets are bounded); with a
    buffer, their stand-ins that write on `MetricBuffer.flush`."""

    def __init__(self, metric: Any, buffer: MetricBuffer | None) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}
        self._wrap: Callable[[Any], Any] | None = None
        if buffer is not None:
            histogram = isinstance(metric, Histogram)
            self._wrap = buffer.histogram if histogram else buffer.counter

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._metric.labels(*labels)
            if self._wrap is not None:
                child = self._wrap(child)
            self._children[labels] = child
        return child


class _RequestSeries:
    """The children that requests of one endpoint, model, version and tenant update, with their
    labels made bounded once (a request then costs a few attribute reads, not label lookups)."""

    def __init__(
        self,
        children: Mapping[str, _Children],
        labels: tuple[str, str, str, str],
        busy: Any,
        classes: frozenset[str],
    ) -> None:
        endpoint, name, version, tenant = labels
        self.busy = busy
        self.classes = classes  # the model's known classes: others are counted as OTHER
        self.in_flight = children["servewatch_in_flight_requests"](endpoint)
        self.busy_seconds = children["servewatch_worker_busy_seconds_total"](endpoint)
        self.duration = children["servewatch_request_duration_seconds"](*labels)
        self.confidence = children["servewatch_prediction_confidence"](name, version, tenant)
        # Outcome, resource class and predicted class vary by request: children on first use.
        self.requests = _ChildrenBy(
            lambda outcome: children["servewatch_requests_total"](*labels, outcome)
        )
        self.compute = _ChildrenBy(
            lambda resource_class: children["servewatch_compute_seconds_total"](
                name, version, tenant, endpoint, resource_class
            )
        )
        self.predicted = _ChildrenBy(
            lambda label: children["servewatch_predicted_class_total"](name, version, tenant, label)
        )


class _ChildrenBy(dict[str, Any]):
    """Metric children by the one label value that varies, made by `make` on first use."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> Any:
        child = self[key] = self._make(key)
        return child


class _BusyTime:
    """Wall time with at least one request of an endpoint in flight (overlaps count once)."""

    def __init__(self) -> None:
        self._in_flight = 0
        self._since = 0.0
        self._unreported = 0.0

    def start(self, now: float) -> None:
        if self._in_flight:
            self._unreported += now - self._since
        self._since = now
        self._in_flight += 1

    def finish(self, now: float) -> float:
        """Busy seconds not reported yet (reported at each finish, so saturation shows too)."""
        seconds = self._unreported + (now - self._since if self._in_flight else 0.0)
        self._since = now
        self._in_flight = max(0, self._in_flight - 1)
        self._unreported = 0.0
        return seconds


class Instrumentation:
    """The catalog's service metrics, updated from requests and batches (no-op when disabled).

    With `flush_interval_s` > 0 updates are summed in memory and written at most that long
    after they happen (see `service.metric_buffer`): the owner calls `flush` that often.
    """

    def __init__(
        self,
        metrics: Mapping[str, Any] | None,
        *,
        tenants: Iterable[str],
        clock: Callable[[], float] = time.perf_counter,
        flush_interval_s: float = 0.0,
    ) -> None:
        self.metrics = metrics
        self.enabled = metrics is not None  # an attribute: read on every request
        self.flush_interval_s = flush_interval_s
        self._buffer = MetricBuffer() if flush_interval_s > 0 else None
        self._m = {name: _Children(m, self._buffer) for name, m in (metrics or {}).items()}
        self._tenants = frozenset(tenants)
        self._versions: dict[str, set[str]] = {}
        self._classes: dict[tuple[str, str], frozenset[str]] = {}
        self._clock = clock
        self._busy = {endpoint: _BusyTime() for endpoint in (*ENDPOINT_NAMES, OTHER)}
        # By the trace's raw labels: all of them are bounded already (configured tenants and
        # routes, business endpoints), and the size cap below keeps it so regardless.
        self._series: dict[tuple[str, str, str, str], _RequestSeries] = {}
        self._rollout_series: set[tuple[str, str, str, str]] = set()
        self._services: frozenset[str] = frozenset()

    @classmethod
    def create(
        cls,
        *,
        enabled: bool,
        registry: CollectorRegistry | None,
        tenants: Iterable[str],
        clock: Callable[[], float] = time.perf_counter,
        flush_interval_s: float = 0.0,
    ) -> Instrumentation:
        """Metrics registered in `registry` (None: multiprocess files only), or none at all."""
        metrics = create_metrics(SERVICE_METRICS, registry) if enabled else None
        return cls(metrics, tenants=tenants, clock=clock, flush_interval_s=flush_interval_s)

    @property
    def buffered(self) -> bool:
        """Whether updates wait for `flush` (else they are written as they happen)."""
        return self._buffer is not None

    def flush(self) -> None:
        """Write the updates held in memory (nothing to do when unbuffered)."""
        if self._buffer is not None:
            self._buffer.flush()

    def model_loaded(self, model: ModelLabels) -> None:
        """Remember the model's labels and export servewatch_model_info{provider}."""
        self._versions.setdefault(model.name, set()).add(model.version)
        self._classes[(model.name, model.version)] = frozenset(model.classes)
        self._series.clear()  # labels made bounded before this model was known
        if self.metrics is not None:
            info = self.metrics["servewatch_model_info"]
            info.labels(model.name, model.version, model.provider).set(1)

    def rollout_weights(self, weights: Mapping[tuple[str, str, str, str], float]) -> None:
        """Export servewatch_rollout_weight per (endpoint, model, version, role) in force; series no
        longer in force drop to 0."""
        if self.metrics is None:
            return
        gauge = self.metrics["servewatch_rollout_weight"]
        for labels in self._rollout_series - weights.keys():
            gauge.labels(*labels).set(0)
        for labels, weight in weights.items():
            gauge.labels(*labels).set(weight)
        self._rollout_series |= weights.keys()

    # BatchObserver
    def queued(self, model: ModelLabels, delta: int) -> None:
        if self.enabled:
            self._m["servewatch_queue_depth"](model.name).inc(delta)

    def batch_done(self, model: ModelLabels, result: BatchResult) -> None:
        if not self.enabled:
            return
        m = self._m
        m["servewatch_inference_duration_seconds"](
            model.name, model.version, model.provider
        ).observe(result.seconds)
        m["servewatch_batch_size"](model.name, model.version).observe(result.size)
        for item in result.items:
            if item.failure is not None:
                reason = item.failure if item.failure in SCHEMA_FAILURE_REASONS else OTHER
                m["servewatch_output_schema_failures_total"](
                    model.name, model.version, reason
                ).inc()

    # The gateway-to-model-service hop (split topology)
    def model_services(self, names: Iterable[str]) -> None:
        """The model services the gateway calls (others are labelled OTHER)."""
        self._services = frozenset(names)

    def model_call_started(self, service: str) -> None:
        if self.enabled:
            self._m["servewatch_model_service_queue_depth"](self._service(service)).inc()

    def model_call_finished(
        self, service: str, model: ModelLabels, seconds: float, reason: str | None
    ) -> None:
        """A call answered (`reason` None) or failed (a catalog.MODEL_CALL_ERROR_REASONS)."""
        if not self.enabled:
            return
        service = self._service(service)
        name, version = self._model(model.name, model.version)
        self._m["servewatch_model_service_queue_depth"](service).dec()
        self._m["servewatch_model_call_duration_seconds"](service, name, version).observe(seconds)
        if reason is not None:
            reason = reason if reason in MODEL_CALL_ERROR_REASONS else OTHER
            self._m["servewatch_model_call_errors_total"](service, name, reason).inc()

    def _service(self, service: str) -> str:
        return service if service in self._services else OTHER

    def request_started(self, endpoint: str) -> None:
        if self.enabled:
            endpoint = endpoint if endpoint in ENDPOINT_NAMES else OTHER  # `_endpoint`, inline
            self._busy[endpoint].start(self._clock())
            self._m["servewatch_in_flight_requests"](endpoint).inc()

    def request_abandoned(self, endpoint: str) -> None:
        """The client left before sending its request: no answer, nothing counted."""
        if self.enabled:
            endpoint = self._endpoint(endpoint)
            self._m["servewatch_in_flight_requests"](endpoint).dec()
            self._m["servewatch_worker_busy_seconds_total"](endpoint).inc(
                self._busy[endpoint].finish(self._clock())
            )

    def request_finished(self, trace: RequestTrace, outcome: str, latency_s: float) -> None:
        """Count the request and its predictions; pairs with `request_started`."""
        if not self.enabled:
            return
        series = self._series_of(trace)
        series.in_flight.dec()
        series.busy_seconds.inc(series.busy.finish(self._clock()))
        series.requests[outcome if outcome in OUTCOMES else OTHER].inc()
        series.duration.observe(latency_s)
        compute = sum(map(_COMPUTE_SECONDS, trace.items))  # no generator frame
        if compute > 0:
            series.compute[trace.resource_class or "cpu"].inc(compute)
        if outcome != "ok":
            return
        classes = series.classes
        for item in trace.items:
            if item.predicted_class is None or item.confidence is None:
                continue
            series.confidence.observe(item.confidence)
            label = item.predicted_class if item.predicted_class in classes else OTHER
            series.predicted[label].inc()

    def _series_of(self, trace: RequestTrace) -> _RequestSeries:
        key = (trace.endpoint, trace.model_name, trace.model_version, trace.tenant)
        series = self._series.get(key)
        if series is None:
            endpoint = self._endpoint(trace.endpoint)
            name, version = self._model(trace.model_name, trace.model_version)
            tenant = trace.tenant if trace.tenant in self._tenants else OTHER
            labels = (endpoint, name, version, tenant)
            classes = self._classes.get((name, version), frozenset())
            series = _RequestSeries(self._m, labels, self._busy[endpoint], classes)
            if len(self._series) < _MAX_CACHED_SERIES:
                self._series[key] = series
        return series

    def _endpoint(self, endpoint: str) -> str:
        return endpoint if endpoint in ENDPOINT_NAMES else OTHER

    def _model(self, name: str, version: str) -> tuple[str, str]:
        versions = self._versions.get(name)
        if versions is None:
            return OTHER, OTHER
        return name, version if version in versions else OTHER
