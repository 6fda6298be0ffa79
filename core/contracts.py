"""The public contracts of DESIGN.md, each written once: the `predictions` row, the error classes,
the monitors with their metrics, the business endpoints, the monitor-result keys and the audit
log's events.

Every other module derives its lists from these tables; `tests/core/test_contracts.py` fails when
another module spells one of them out again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

# --- Contract 1: the `predictions` row -------------------------------------------------------

ColumnKind = Literal["text", "timestamp", "float", "int", "json"]


@dataclass(frozen=True)
class PredictionColumn:
    """One column of the `predictions` row: its SQL kind, size, nullability and whether the
    column is part of the public contract (the others are nullable extras)."""

    name: str
    kind: ColumnKind
    nullable: bool
    public: bool = True
    length: int | None = None
    unique: bool = False
    indexed: bool = False


PREDICTION_ROW: tuple[PredictionColumn, ...] = (
    PredictionColumn("request_id", "text", False, length=64, unique=True),
    PredictionColumn("ts", "timestamp", False, indexed=True),
    PredictionColumn("tenant", "text", False, length=128),
    PredictionColumn("endpoint", "text", False, length=64),
    PredictionColumn("model_name", "text", False, length=128),
    PredictionColumn("model_version", "text", False, length=64),
    PredictionColumn("predicted_class", "text", True, length=128),
    PredictionColumn("confidence", "float", True),
    PredictionColumn("latency_ms", "float", False),
    PredictionColumn("compute_ms", "float", False),
    PredictionColumn("batch_size", "int", False),
    PredictionColumn("status", "text", False, length=32),
    # Extras beyond the contract: nullable, so outside writers need not know them.
    PredictionColumn("region", "text", True, public=False, length=64),
    PredictionColumn("resource_class", "text", True, public=False, length=8),
    PredictionColumn("probabilities", "json", True, public=False),
    PredictionColumn("features", "json", True, public=False),
    PredictionColumn("error_message", "text", True, public=False),
    # The client's own X-Request-ID, kept beside ours: it never names another tenant's row.
    PredictionColumn("client_request_id", "text", True, public=False, length=64, indexed=True),
    # HMAC-SHA256 of the input (the audit log's digest), never the input itself.
    PredictionColumn("input_hmac", "text", True, public=False, length=64),
    # The worker's CPU milliseconds charged to this row: its request's share of everything the
    # worker process spent (HTTP, validation, inference, logging), split equally over a bulk
    # request's rows (service.busy_share). Null from writers that do not measure it.
    PredictionColumn("busy_ms", "float", True, public=False),
)
# The order of the values in a prediction row, as the service makes them and the store takes them.
PREDICTION_COLUMNS: tuple[str, ...] = tuple(column.name for column in PREDICTION_ROW)
PUBLIC_PREDICTION_COLUMNS: tuple[str, ...] = tuple(c.name for c in PREDICTION_ROW if c.public)

# --- Contract 2: error classes ---------------------------------------------------------------


@dataclass(frozen=True)
class ErrorClass:
    """An error class: its default HTTP status, other statuses it answers with, and the message
    given when there is nothing more specific to say."""

    code: str
    status: int
    message: str
    also: tuple[int, ...] = ()


ERROR_TABLE: tuple[ErrorClass, ...] = (
    ErrorClass("validation_error", 400, "the request is not valid", also=(422,)),
    ErrorClass("unauthorized", 401, "a valid API key is required (Authorization: Bearer <key>)"),
    ErrorClass("forbidden", 403, "this tenant may not call this endpoint"),
    # HTTP wants 405 for a known path with the wrong method; the envelope says not_found.
    ErrorClass("not_found", 404, "no such route", also=(405,)),
    ErrorClass("payload_too_large", 413, "the request body is too large"),
    ErrorClass("overloaded", 503, "the service is overloaded, retry later", also=(429,)),
    ErrorClass("timeout", 504, "the request took too long"),
    ErrorClass(
        "model_error", 500, "the model failed to answer; the request id identifies it in the log"
    ),
    ErrorClass("not_ready", 503, "the service is not ready"),
)
ERROR_CODES: tuple[str, ...] = tuple(error.code for error in ERROR_TABLE)
ERROR_STATUS: dict[str, int] = {error.code: error.status for error in ERROR_TABLE}
ERROR_MESSAGE: dict[str, str] = {error.code: error.message for error in ERROR_TABLE}
# "ok" completes the value set of a request's outcome (the `status` column, the `outcome` label).
OUTCOMES: tuple[str, ...] = ("ok", *ERROR_CODES)

# --- Contract 3: monitor results -------------------------------------------------------------

Status = Literal["ok", "warn", "alert", "insufficient_data"]
# The code each status is exported with (servewatch_monitor_status).
STATUS_CODES: dict[str, int] = {"ok": 0, "warn": 1, "alert": 2, "insufficient_data": -1}
ALL = "*"  # tenant or model_version of a row that covers all of them
RESULT_KEYS: tuple[str, ...] = (
    "monitor",
    "model_name",
    "model_version",
    "tenant",
    "window_start",
    "window_end",
    "metric",
    "value",
    "threshold",
    "status",
    "n",
)


@dataclass(frozen=True)
class MonitorMetric:
    """A metric a monitor computes: its default thresholds (none: never judged) and meaning."""

    name: str
    meaning: str
    warn: float | None = None
    alert: float | None = None
    share: bool = False  # a fraction in [0, 1], shown as a percentage


@dataclass(frozen=True)
class Monitor:
    """A monitor, what its alert says has moved, and its metrics."""

    name: str
    moved: str
    metrics: tuple[MonitorMetric, ...]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(metric.name for metric in self.metrics)


MONITOR_TABLE: tuple[Monitor, ...] = (
    Monitor(
        "confidence_drift",
        "confidence distribution has drifted",
        (
            MonitorMetric(
                "psi", "Population stability index against the reference window", 0.1, 0.25
            ),
            MonitorMetric(
                "js_distance", "Jensen-Shannon distance against the reference window", 0.1, 0.2
            ),
            MonitorMetric(
                "ks_statistic",
                "Kolmogorov-Smirnov statistic of the confidences against the reference",
                0.1,
                0.2,
            ),
            MonitorMetric(
                "wasserstein_normalized",
                "Wasserstein distance of the confidences, normalized to [0, 1]",
                0.1,
                0.25,
            ),
            MonitorMetric(
                "mean_confidence_drop",
                "Drop of the mean confidence from the reference",
                0.05,
                0.1,
                share=True,
            ),
            MonitorMetric(
                "low_confidence_share",
                "Share of predictions below the low-confidence cutoff",
                0.2,
                0.35,
                share=True,
            ),
        ),
    ),
    Monitor(
        "class_shift",
        "predicted class mix has shifted",
        (
            MonitorMetric(
                "psi", "Population stability index against the reference window", 0.1, 0.25
            ),
            MonitorMetric(
                "js_distance", "Jensen-Shannon distance against the reference window", 0.1, 0.2
            ),
            MonitorMetric(
                "chi_square", "Chi-square statistic of the class counts against the reference"
            ),
        ),
    ),
    Monitor(
        "schema_failures",
        "output-schema failure rate is above its threshold",
        (
            MonitorMetric(
                "failure_rate",
                "Share of inference outputs that broke the output schema (model_error)",
                0.001,
                0.01,
                share=True,
            ),
        ),
    ),
    Monitor(
        "cost",
        "cost is above its threshold",
        (
            MonitorMetric("attributed_cost_usd", "Cost attributed to requests (compute and fees)"),
            MonitorMetric("idle_cost_usd", "Share of the idle provisioned capacity"),
            MonitorMetric("total_cost_usd", "Attributed plus idle cost"),
            MonitorMetric("cost_per_1k_predictions_usd", "Attributed cost per 1,000 predictions"),
        ),
    ),
    Monitor(
        "traffic",
        "traffic has dropped far below its usual rate",
        (
            MonitorMetric(
                "volume_drop",
                "1 - predictions in the window / predictions expected from the key's usual rate",
                0.5,
                0.9,
                share=True,
            ),
        ),
    ),
)
MONITOR_NAMES: tuple[str, ...] = tuple(monitor.name for monitor in MONITOR_TABLE)


def monitor(name: str) -> Monitor:
    """The monitor named `name` (KeyError if none)."""
    for entry in MONITOR_TABLE:
        if entry.name == name:
            return entry
    raise KeyError(name)


def metric_names(monitor_name: str) -> tuple[str, ...]:
    """The metrics the monitor named `monitor_name` computes, in order."""
    return monitor(monitor_name).metric_names


# --- The business endpoints ------------------------------------------------------------------

Payload = Literal["ticket", "tickets", "risk"]


@dataclass(frozen=True)
class Endpoint:
    """A business endpoint: its request payload, default model and default batch policy."""

    name: str
    payload: Payload
    model: str
    max_batch_size: int
    max_latency_ms: int
    family: str  # the model family; in the split topology, the model service that serves it

    @property
    def route(self) -> str:
        return f"/{self.name}"

    @property
    def bulk(self) -> bool:
        """Whether one request carries many items (each its own prediction row)."""
        return self.payload == "tickets"


ENDPOINT_TABLE: tuple[Endpoint, ...] = (
    Endpoint("classify_ticket", "ticket", "ticket_classifier", 16, 10, "ticket"),
    Endpoint("classify_tickets", "tickets", "ticket_classifier", 128, 200, "ticket"),
    Endpoint("predict_risk", "risk", "risk_scorer", 32, 10, "risk"),
)
ENDPOINT_NAMES: tuple[str, ...] = tuple(endpoint.name for endpoint in ENDPOINT_TABLE)
BULK_SUFFIX = "_bulk"


def model_service_of(name: str, *, isolate_bulk: bool = False) -> str:
    """The model service that runs endpoint `name`'s inference in the split topology: its
    family's, or its family's bulk service when bulk routes are isolated."""
    entry = endpoint(name)
    return entry.family + BULK_SUFFIX if isolate_bulk and entry.bulk else entry.family


def model_services(*, isolate_bulk: bool = False) -> dict[str, tuple[str, ...]]:
    """Each model service of the split topology and the endpoints it serves, in table order."""
    services: dict[str, tuple[str, ...]] = {}
    for entry in ENDPOINT_TABLE:
        service = model_service_of(entry.name, isolate_bulk=isolate_bulk)
        services[service] = (*services.get(service, ()), entry.name)
    return services


def endpoint(name: str) -> Endpoint:
    """The endpoint named `name` (KeyError if none)."""
    for entry in ENDPOINT_TABLE:
        if entry.name == name:
            return entry
    raise KeyError(name)


# --- Contract 4: the audit log ---------------------------------------------------------------

AuditKind = Literal[
    "prediction", "release", "rollout_step", "promotion", "abort", "rollback", "prune"
]


@dataclass(frozen=True)
class AuditEvent:
    """One row of the append-only audit log: an answered prediction, a release action or a
    prune of old predictions (`storage.retention`)."""

    kind: AuditKind
    ts: datetime
    request_id: str | None = None
    tenant: str | None = None
    endpoint: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    decision: str | None = None
    confidence: float | None = None
    input_hmac: str | None = None  # HMAC-SHA256 of the input, never the input itself
    actor: str | None = None  # who took a release action
    details: dict[str, Any] | None = None  # e.g. the gates' verdicts of a release action


AUDIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditEvent))
