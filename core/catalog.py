"""The metric catalog: every series servewatch emits, the single source for service, monitors,
dashboards and alerts. Pure data; imports neither BentoML nor anything heavy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["counter", "gauge", "histogram"]

PREDICTION_LOG_EVENTS: tuple[str, ...] = ("queued", "written", "spilled", "replayed", "dropped")
# Why a gateway call to a model service failed (split topology).
MODEL_CALL_ERROR_REASONS: tuple[str, ...] = ("timeout", "unavailable", "overloaded", "model_error")
# Label value used for anything outside a bounded set (unknown tenant, unrouted model, ...).
OTHER = "other"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class MetricSpec:
    """One series family: its exposed name, kind, help text, labels and buckets."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    buckets: tuple[float, ...] | None = None
    # How gauges aggregate across BentoML's worker processes (prometheus_client multiprocess).
    multiprocess_mode: str = "livesum"

    @property
    def series(self) -> tuple[str, ...]:
        """Names of the samples this family exposes (what PromQL can select)."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


MODEL_LABELS = ("model_name", "model_version")

SERVICE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "servewatch_requests_total",
        "counter",
        "Business requests answered, by endpoint, model, version, tenant and outcome.",
        ("endpoint", *MODEL_LABELS, "tenant", "outcome"),
    ),
    MetricSpec(
        "servewatch_request_duration_seconds",
        "histogram",
        "Time spent in the service per business request.",
        ("endpoint", *MODEL_LABELS, "tenant"),
        unit="seconds",
        buckets=LATENCY_BUCKETS,
    ),
    MetricSpec(
        "servewatch_inference_duration_seconds",
        "histogram",
        "ONNX Runtime time per inference batch.",
        (*MODEL_LABELS, "provider"),
        unit="seconds",
        buckets=INFERENCE_BUCKETS,
    ),
    MetricSpec(
        "servewatch_batch_size",
        "histogram",
        "Items per inference batch.",
        MODEL_LABELS,
        buckets=BATCH_SIZE_BUCKETS,
    ),
    MetricSpec(
        "servewatch_in_flight_requests",
        "gauge",
        "Business requests being processed now.",
        ("endpoint",),
    ),
    MetricSpec(
        "servewatch_queue_depth",
        "gauge",
        "Items waiting for an inference batch.",
        ("model_name",),
    ),
    MetricSpec(
        "servewatch_worker_busy_seconds_total",
        "counter",
        "Seconds a worker spent handling requests (utilization = rate / workers).",
        ("endpoint",),
        unit="seconds",
    ),
    MetricSpec(
        "servewatch_prediction_confidence",
        "histogram",
        "Confidence (probability of the returned class) per prediction.",
        (*MODEL_LABELS, "tenant"),
        buckets=CONFIDENCE_BUCKETS,
    ),
    MetricSpec(
        "servewatch_predicted_class_total",
        "counter",
        "Predictions by returned class.",
        (*MODEL_LABELS, "tenant", "predicted_class"),
    ),
    MetricSpec(
        "servewatch_output_schema_failures_total",
        "counter",
        "Inference outputs that broke the output schema (non-finite, not summing to 1, bad class).",
        (*MODEL_LABELS, "reason"),
    ),
    MetricSpec(
        "servewatch_compute_seconds_total",
        "counter",
        "Inference seconds attributed to each item (batch time / batch size).",
        (*MODEL_LABELS, "tenant", "endpoint", "resource_class"),
        unit="seconds",
    ),
    MetricSpec(
        "servewatch_prediction_log_records_total",
        "counter",
        "Prediction-log pipeline events: queued, written, spilled to disk, replayed, dropped.",
        ("event",),
    ),
    MetricSpec(
        "servewatch_prediction_log_spill_backlog",
        "gauge",
        "Prediction records waiting in spill files for the store to come back.",
        multiprocess_mode="livesum",
    ),
    MetricSpec(
        "servewatch_prediction_log_replay_lag_seconds",
        "gauge",
        "Age of the oldest record still waiting in a spill file (0 when none).",
        unit="seconds",
        multiprocess_mode="livemax",
    ),
    MetricSpec(
        "servewatch_model_call_duration_seconds",
        "histogram",
        "Time the gateway waited for a model service's answer per call (split topology).",
        ("service", *MODEL_LABELS),
        unit="seconds",
        buckets=LATENCY_BUCKETS,
    ),
    MetricSpec(
        "servewatch_model_call_errors_total",
        "counter",
        "Gateway calls to a model service that failed, by reason (timeout, unavailable, "
        "overloaded, model_error; split topology).",
        ("service", "model_name", "reason"),
    ),
    MetricSpec(
        "servewatch_model_service_queue_depth",
        "gauge",
        "Calls the gateway has sent to a model service and not had answered yet (split topology).",
        ("service",),
    ),
    MetricSpec(
        "servewatch_model_info",
        "gauge",
        "Loaded model versions and the ONNX Runtime provider really in use (value 1).",
        (*MODEL_LABELS, "provider"),
        multiprocess_mode="livemax",
    ),
    MetricSpec(
        "servewatch_rollout_weight",
        "gauge",
        "Percent of an endpoint's baseline traffic a worker sends to each version of a canary "
        "rollout in force, by role (candidate, baseline; 0 once the rollout ends).",
        ("endpoint", *MODEL_LABELS, "role"),
        unit="percent",
        multiprocess_mode="livemax",
    ),
)

MONITOR_KEY_LABELS = ("monitor", "metric", *MODEL_LABELS, "tenant")

MONITOR_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "servewatch_monitor_value",
        "gauge",
        "Latest value of a monitor metric per model, version and tenant ('*' = all).",
        MONITOR_KEY_LABELS,
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_status",
        "gauge",
        "Latest status of a monitor metric: 0 ok, 1 warn, 2 alert, -1 insufficient data.",
        MONITOR_KEY_LABELS,
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_sample_size",
        "gauge",
        "Predictions the latest monitor value was computed from.",
        MONITOR_KEY_LABELS,
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_threshold",
        "gauge",
        "Configured monitor threshold by severity (warn, alert).",
        ("monitor", "metric", "severity"),
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful run of a monitor.",
        ("monitor",),
        unit="seconds",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_last_run_timestamp_seconds",
        "gauge",
        "Unix time of the last completed run of a monitor (read back from monitor_results when "
        "the scheduler starts).",
        ("monitor",),
        unit="seconds",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_schedule_seconds",
        "gauge",
        "How often a monitor runs (its configured every_seconds).",
        ("monitor",),
        unit="seconds",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_run_duration_seconds",
        "gauge",
        "Duration of the last run of a monitor.",
        ("monitor",),
        unit="seconds",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_monitor_runs_total",
        "counter",
        "Monitor runs by outcome (success, failure).",
        ("monitor", "outcome"),
    ),
    MetricSpec(
        "servewatch_cost_usd",
        "gauge",
        "Cost over the latest cost window by model, version, tenant, endpoint and kind "
        "(attributed, idle).",
        (*MODEL_LABELS, "tenant", "endpoint", "kind"),
        unit="dollars",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_cost_per_1k_predictions_usd",
        "gauge",
        "Attributed cost per 1,000 predictions over the latest cost window.",
        MODEL_LABELS,
        unit="dollars",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_tenant_week_cost_usd",
        "gauge",
        "Cost of the current ISO week so far per tenant (attributed plus idle share).",
        ("tenant",),
        unit="dollars",
        multiprocess_mode="mostrecent",
    ),
    MetricSpec(
        "servewatch_tenant_weekly_budget_usd",
        "gauge",
        "Configured weekly budget per tenant.",
        ("tenant",),
        unit="dollars",
        multiprocess_mode="mostrecent",
    ),
)

CATALOG: tuple[MetricSpec, ...] = SERVICE_METRICS + MONITOR_METRICS


def spec(name: str) -> MetricSpec:
    """The catalog entry named `name` (KeyError if none)."""
    for entry in CATALOG:
        if entry.name == name:
            return entry
    raise KeyError(name)


def series_names(specs: Iterable[MetricSpec] = CATALOG) -> frozenset[str]:
    """Every selectable sample name the catalog defines."""
    return frozenset(s for entry in specs for s in entry.series)
