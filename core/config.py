"""Settings: `SERVEWATCH_*` environment variables plus an optional YAML file of structure."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.contracts import ENDPOINT_NAMES, ENDPOINT_TABLE, MONITOR_NAMES, MONITOR_TABLE

Severity = Literal["warn", "alert"]


class ConfigError(Exception):
    """A configuration value is invalid; the message names the field and its source."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantConfig(_Strict):
    """A tenant: the SHA-256 hashes of its API keys and the endpoints it may call."""

    api_key_sha256: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=lambda: ["*"])
    weekly_budget_usd: float | None = Field(default=None, ge=0)

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("must be lowercase hex SHA-256 digests (64 characters)")
        return value

    def allows(self, endpoint: str) -> bool:
        return "*" in self.endpoints or endpoint in self.endpoints


class ModelRef(_Strict):
    """Which registered model (and version, or `latest`) serves a request."""

    model: str
    version: str = "latest"


class RoutingRule(ModelRef):
    """A routing override matched on tenant and/or region (unset fields match anything)."""

    tenant: str | None = None
    region: str | None = None


class RouteConfig(_Strict):
    default: ModelRef
    rules: list[RoutingRule] = Field(default_factory=list)


class BatchPolicy(_Strict):
    """Adaptive-batching policy of one route."""

    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_latency_ms: int = Field(default=20, ge=1, le=60_000)


class Price(_Strict):
    """Unit prices in US dollars. The per-second prices apply when no capacity is provisioned
    (`capacity.replicas: 0`, paid per use); the request fee always."""

    cpu_per_second: float = Field(default=0.00005, ge=0)
    gpu_per_second: float = Field(default=0.0006, ge=0)
    per_request: float = Field(default=0.000002, ge=0)


class CapacityConfig(_Strict):
    """Provisioned capacity: replicas × hourly rate is what is paid whether used or not; it
    offers replicas × cpus CPU seconds a second, which requests use or leave idle."""

    replicas: int = Field(default=1, ge=0)
    hourly_rate_usd: float = Field(default=0.10, ge=0)
    cpus: float = Field(default=1.0, gt=0)  # CPU cores of one replica
    resource_class: Literal["cpu", "gpu"] = "cpu"


class PricingConfig(_Strict):
    default: Price = Field(default_factory=Price)
    models: dict[str, Price] = Field(default_factory=dict)
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)

    def price_for(self, model_name: str) -> Price:
        return self.models.get(model_name, self.default)


class Threshold(_Strict):
    warn: float
    alert: float

    @field_validator("alert")
    @classmethod
    def _ordered(cls, value: float, info) -> float:  # type: ignore[no-untyped-def]
        warn = info.data.get("warn")
        if warn is not None and value < warn:
            raise ValueError("alert threshold must be >= warn threshold")
        return value


def _default_thresholds() -> dict[str, dict[str, Threshold]]:
    return {
        monitor.name: {
            metric.name: Threshold(warn=metric.warn, alert=metric.alert)
            for metric in monitor.metrics
            if metric.warn is not None and metric.alert is not None
        }
        for monitor in MONITOR_TABLE
        if any(metric.warn is not None for metric in monitor.metrics)
    }


class MonitorSchedule(_Strict):
    """Run a monitor every `every_seconds` over the trailing `window_seconds`."""

    every_seconds: int = Field(default=300, ge=1)
    window_seconds: int = Field(default=3600, ge=1)


def _default_schedules() -> dict[str, MonitorSchedule]:
    return {name: MonitorSchedule() for name in MONITOR_NAMES}


# The metrics each monitor computes: a threshold may be set on any of them.
MONITOR_METRIC_NAMES: dict[str, tuple[str, ...]] = {m.name: m.metric_names for m in MONITOR_TABLE}


def _merged_over_defaults(
    value: object, defaults: Mapping[str, Any], what: str, known: Mapping[str, Any]
) -> object:
    """A partial mapping from the file, laid over the defaults; unknown names are refused."""
    if not isinstance(value, dict):
        return value
    merged = dict(defaults)
    for name, entry in value.items():
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
        if isinstance(entry, dict) and isinstance(known[name], tuple):
            unknown = [m for m in entry if m not in known[name]]
            if unknown:
                raise ValueError(
                    f"unknown metric {unknown[0]!r} of {name}; known: {', '.join(known[name])}"
                )
            entry = {**merged.get(name, {}), **entry}
        merged[name] = entry
    return merged


class TrafficConfig(_Strict):
    """How the traffic monitor learns a key's usual rate and when that rate is enough to judge."""

    # A key's usual rate is the median of its hourly counts over this many hours before the
    # window (or over the reference window of a manual run).
    reference_hours: int = Field(default=168, ge=1, le=24 * 90)
    # A key is judged only when its usual rate predicts at least this many predictions in the
    # window: below it, Poisson noise alone would often halve the count.
    min_expected: float = Field(default=50.0, gt=0)


class FalseAlarmRate(_Strict):
    """Chance that one run raises a key without drift to warn (to alert), before the floors.

    A drift metric is judged at a level only when its test's p-value is at most this rate
    divided by the number of keys judged in the run (Bonferroni), see docs/monitors.md.
    """

    warn: float = Field(default=0.01, gt=0, lt=1)
    alert: float = Field(default=0.001, gt=0, lt=1)

    @field_validator("alert")
    @classmethod
    def _not_above_warn(cls, value: float, info) -> float:  # type: ignore[no-untyped-def]
        warn = info.data.get("warn")
        if warn is not None and value > warn:
            raise ValueError("the alert false-alarm rate must be <= the warn one")
        return value


# What a window is compared with: each version's registered baseline, the same key's trailing
# `reference_window_hours`, or its first `production_reference_hours` in service.
ReferenceSource = Literal["baseline", "window", "production"]
AggregateSourceName = Literal["rollups", "raw"]


class MonitorOverride(_Strict):
    """Thresholds (the effect floors) and false-alarm rates for one model and/or one tenant."""

    model: str | None = None
    tenant: str | None = None
    thresholds: dict[str, dict[str, Threshold]] = Field(default_factory=dict)
    false_alarm_rate: FalseAlarmRate | None = None

    @field_validator("thresholds", mode="before")
    @classmethod
    def _known_metrics(cls, value: object) -> object:
        return _merged_over_defaults(value, {}, "monitor", MONITOR_METRIC_NAMES)

    @model_validator(mode="after")
    def _names_something(self) -> MonitorOverride:
        if self.model is None and self.tenant is None:
            raise ValueError("an override names a model, a tenant or both")
        return self

    def matches(self, model: str | None, tenant: str | None) -> bool:
        return (self.model is None or self.model == model) and (
            self.tenant is None or self.tenant == tenant
        )

    @property
    def specificity(self) -> int:
        """2 for model and tenant, 1 for a model alone, 0 for a tenant alone."""
        return (self.model is not None) + (self.model is not None and self.tenant is not None)


class MonitorsConfig(_Strict):
    min_predictions: int = Field(default=100, ge=1)
    low_confidence_cutoff: float = Field(default=0.5, gt=0, lt=1)
    thresholds: dict[str, dict[str, Threshold]] = Field(default_factory=_default_thresholds)
    false_alarm_rate: FalseAlarmRate = Field(default_factory=FalseAlarmRate)
    reference: ReferenceSource = "baseline"
    # Where the monitors read predictions' aggregates: the per-minute rollups, or raw rows.
    source: AggregateSourceName = "rollups"
    reference_window_hours: int = Field(default=24, ge=1)
    production_reference_hours: int = Field(default=24, ge=1)
    # The most specific matching override wins (model and tenant, then model, then tenant).
    overrides: list[MonitorOverride] = Field(default_factory=list)
    schedules: dict[str, MonitorSchedule] = Field(default_factory=_default_schedules)
    finops_weekday: int = Field(default=1, ge=1, le=7, description="ISO weekday of the report")
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds_over_defaults(cls, value: object) -> object:
        return _merged_over_defaults(value, _default_thresholds(), "monitor", MONITOR_METRIC_NAMES)

    @field_validator("schedules", mode="before")
    @classmethod
    def _schedules_over_defaults(cls, value: object) -> object:
        known = {name: None for name in MONITOR_METRIC_NAMES}
        return _merged_over_defaults(value, _default_schedules(), "monitor", known)

    def _overrides_for(self, model: str | None, tenant: str | None) -> list[MonitorOverride]:
        matching = [o for o in self.overrides if o.matches(model, tenant)]
        return sorted(matching, key=lambda o: -o.specificity)

    def threshold(
        self, monitor: str, metric: str, model: str | None = None, tenant: str | None = None
    ) -> Threshold | None:
        """The warn/alert floors of a metric, for a model and tenant when given."""
        for override in self._overrides_for(model, tenant):
            found = override.thresholds.get(monitor, {}).get(metric)
            if found is not None:
                return found
        return self.thresholds.get(monitor, {}).get(metric)

    def false_alarms(self, model: str | None = None, tenant: str | None = None) -> FalseAlarmRate:
        """The false-alarm rates that apply to a model and tenant."""
        for override in self._overrides_for(model, tenant):
            if override.false_alarm_rate is not None:
                return override.false_alarm_rate
        return self.false_alarm_rate


Detector = Literal["email", "iban", "card", "phone"]


class RedactionConfig(_Strict):
    """What is masked in ticket text before it is stored (only when raw inputs are stored)."""

    store_raw_inputs: bool = False
    # Built-in detectors, applied in this order: IBANs and card numbers only when their
    # checksum holds (mod 97, Luhn), phone numbers with libphonenumber's matcher.
    detectors: list[Detector] = Field(default_factory=lambda: list(get_args(Detector)))
    # Regions whose national phone formats are recognised (ISO 3166 alpha-2 codes); numbers
    # written with an international prefix are found whatever the region.
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE", "FR"])
    # Extra patterns, name -> regular expression, masked as [NAME] after the detectors.
    patterns: dict[str, str] = Field(default_factory=dict)

    @field_validator("phone_regions")
    @classmethod
    def _region_codes(cls, value: list[str]) -> list[str]:
        for region in value:
            if len(region) != 2 or not region.isascii() or not region.isupper():
                raise ValueError(f"{region!r} is not an ISO 3166 alpha-2 region code such as GB")
        return value


class LimitsConfig(_Strict):
    max_payload_bytes: int = Field(default=256 * 1024, ge=256)
    max_ticket_chars: int = Field(default=5000, ge=1)
    max_bulk_items: int = Field(default=256, ge=1)
    request_timeout_s: float = Field(default=10.0, gt=0)


# Stable loopback ports of the local stack (`servewatch stack up`); a taken one is replaced by
# a free one at start. The monitors process serves /metrics, /reports and /runbooks.
DEFAULT_PORTS: dict[str, int] = {
    "service": 3000,
    "monitors": 9101,
    "alert_sink": 9102,
    "prometheus": 9090,
    "alertmanager": 9093,
}


# The Alertmanager receiver of alerts routed nowhere.
NO_RECEIVER = "blackhole"


# Alert severities, most urgent first: each is routed to its own receivers.
AlertSeverity = Literal["critical", "warning", "info"]
ALERT_SEVERITIES: tuple[AlertSeverity, ...] = get_args(AlertSeverity)
# Inline secrets Alertmanager could take from a file: refused, so none lands in a generated file.
_INLINE_SECRETS = {
    "api_url": "api_url_file",
    "routing_key": "routing_key_file",
    "service_key": "routing_key_file",
    "auth_password": "auth_password_file",
    "auth_secret": "auth_password_file",
    "bearer_token": "bearer_token_file",
}


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _absolute(value: Path | None) -> Path | None:
    # Alertmanager resolves a relative path against its own config file, which is generated
    # somewhere else: only an absolute path means the same file in both places.
    if value is not None and not value.is_absolute():
        raise ValueError(f"{value} must be an absolute path (Alertmanager reads it)")
    return value


SecretFile = Annotated[Path, AfterValidator(_absolute)]


class _Receiver(_Strict):
    send_resolved: bool = True

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, value: object) -> object:
        if isinstance(value, dict):
            for key, instead in _INLINE_SECRETS.items():
                if key in value:
                    raise ValueError(f"{key} is a secret: give {instead}, a file holding it")
        return value


class SinkReceiver(_Receiver):
    """The built-in `servewatch alert-sink`, which records every notification it gets."""

    kind: Literal["sink"]


class WebhookReceiver(_Receiver):
    """Alertmanager's JSON payload POSTed to `url`, with a bearer token read from a file."""

    kind: Literal["webhook"]
    url: Annotated[str, AfterValidator(_http_url)]
    bearer_token_file: SecretFile | None = None


class EmailReceiver(_Receiver):
    """Mail through an SMTP smarthost; the password is read from a file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["email"]
    to: str = Field(pattern=r"^[^@\s,]+@[^@\s,]+(,\s*[^@\s,]+@[^@\s,]+)*$")
    sender: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    smarthost: str = Field(pattern=r"^[^\s:]+:\d+$", description="host:port")
    auth_username: str | None = None
    auth_password_file: SecretFile | None = None
    require_tls: bool = True


class SlackReceiver(_Receiver):
    """A Slack-style incoming webhook (Slack, Mattermost, ...) whose URL is read from a file."""

    kind: Literal["slack"]
    api_url_file: SecretFile
    channel: str | None = None


class PagerDutyReceiver(_Receiver):
    """A PagerDuty-style Events API v2 integration whose routing key is read from a file."""

    kind: Literal["pagerduty"]
    routing_key_file: SecretFile


Receiver = Annotated[
    SinkReceiver | WebhookReceiver | EmailReceiver | SlackReceiver | PagerDutyReceiver,
    Field(discriminator="kind"),
]


def _default_receivers() -> dict[str, Receiver]:
    return {"pager": SinkReceiver(kind="sink"), "ticket": SinkReceiver(kind="sink")}


def _default_routes() -> dict[AlertSeverity, list[str]]:
    return {"critical": ["pager"], "warning": ["ticket"], "info": []}


class AlertingConfig(_Strict):
    """Where alerts point people (runbooks, monitor reports) and who gets notified."""

    runbook_base_url: Annotated[str, AfterValidator(_http_url)] = (
        f"http://127.0.0.1:{DEFAULT_PORTS['monitors']}/runbooks"
    )
    reports_base_url: Annotated[str, AfterValidator(_http_url)] = (
        f"http://127.0.0.1:{DEFAULT_PORTS['monitors']}/reports"
    )
    # The built-in receiver (`servewatch alert-sink`): a `sink` receiver posts to <this>/<name>.
    alert_sink_url: Annotated[str, AfterValidator(_http_url)] = (
        f"http://127.0.0.1:{DEFAULT_PORTS['alert_sink']}"
    )
    receivers: dict[str, Receiver] = Field(default_factory=_default_receivers)
    # Severity -> receivers notified (all of them); a severity routed nowhere is only shown.
    routes: dict[AlertSeverity, list[str]] = Field(default_factory=_default_routes)

    @field_validator("receivers")
    @classmethod
    def _receiver_names(cls, value: dict[str, Receiver]) -> dict[str, Receiver]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name == NO_RECEIVER:
                raise ValueError(
                    f"receiver name {name!r} must be lower-case letters, digits, - or _ "
                    f"(and not {NO_RECEIVER!r})"
                )
        return value

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> AlertingConfig:
        for severity, names in self.routes.items():
            unknown = [name for name in names if name not in self.receivers]
            if unknown:
                raise ValueError(
                    f"routes.{severity} names unknown receivers {unknown}; "
                    f"known: {', '.join(self.receivers)}"
                )
        return self


class ReplayGates(_Strict):
    """Limits a replay must keep for `servewatch replay` to exit 0 (unset: not gated)."""

    # Share of replayed items the candidate classes as the answering version did.
    min_agreement: float | None = Field(default=None, ge=0, le=1)
    # Share of replayed items whose candidate output breaks the output schema.
    max_schema_failure_rate: float | None = Field(default=None, ge=0, le=1)
    # PSI of class shares and of confidences (candidate against answering version); each fails
    # only when its two-sample test also rejects "same distribution" (monitors' judging).
    max_class_shift_psi: float | None = Field(default=None, gt=0)
    max_confidence_psi: float | None = Field(default=None, gt=0)


class ReplayConfig(_Strict):
    gates: ReplayGates = Field(default_factory=ReplayGates)


class GoldenGates(_Strict):
    """What a candidate's golden set must keep for `servewatch release check` to pass."""

    # How far a golden case's confidence may move from the build's answer on the serving path.
    confidence_tolerance: float = Field(default=0.02, ge=0, le=1)
    # Share of golden cases that must get their true class (the set is drawn blind to the
    # model's answers, so a model that learnt little falls below it).
    min_accuracy: float = Field(default=0.7, ge=0, le=1)


def _alert_floor(monitor: str, metric: str) -> float:
    return _default_thresholds()[monitor][metric].alert


class RolloutGates(_Strict):
    """What a canary's current step must keep for `rollout promote` to move it on (unset: not
    gated). Each compares the candidate's rows since the step began with the baseline's."""

    # Below this many candidate rows in the step, every gate is `insufficient_data`.
    min_candidate_rows: int = Field(default=100, ge=1)
    # Rise of the server-error share (5xx outcomes), candidate minus baseline; fails only when
    # the two-proportion test also rejects "no rise" (monitors' judging).
    max_error_rate_increase: float | None = Field(default=0.02, ge=0, le=1)
    # Candidate p99 latency over the baseline's.
    max_p99_latency_ratio: float | None = Field(default=1.5, gt=0)
    # Share of the candidate's inferences whose output broke the schema (model_error).
    max_schema_failure_rate: float | None = Field(default=0.01, ge=0, le=1)
    # PSI of class shares and of confidences, candidate window against the baseline window;
    # each fails only when its two-sample test also rejects "same distribution". Default: the
    # monitors' alert floor (a canary fails where its monitor would alert).
    max_class_shift_psi: float | None = Field(
        default_factory=lambda: _alert_floor("class_shift", "psi"), gt=0
    )
    max_confidence_psi: float | None = Field(
        default_factory=lambda: _alert_floor("confidence_drift", "psi"), gt=0
    )
    # Share of replayed baseline-answered inputs the candidate classes differently; fails when
    # the 95 % interval lies wholly above it.
    max_disagreement: float | None = Field(default=0.1, ge=0, le=1)
    # How many of the step's baseline-answered stored inputs are replayed (0: none).
    replay_sample: int = Field(default=200, ge=0)


class ReleaseConfig(_Strict):
    golden: GoldenGates = Field(default_factory=GoldenGates)
    gates: RolloutGates = Field(default_factory=RolloutGates)


class RetentionConfig(_Strict):
    """How many days `servewatch db prune` (and the scheduler's daily prune) keeps of each
    table; None keeps it forever."""

    predictions_days: float | None = Field(default=None, gt=0)
    monitor_results_days: float | None = Field(default=None, gt=0)
    rollups_days: float | None = Field(default=None, gt=0)  # per-minute prediction rollups


def _default_routing() -> dict[str, RouteConfig]:
    return {e.name: RouteConfig(default=ModelRef(model=e.model)) for e in ENDPOINT_TABLE}


def _default_batching() -> dict[str, BatchPolicy]:
    return {
        e.name: BatchPolicy(max_batch_size=e.max_batch_size, max_latency_ms=e.max_latency_ms)
        for e in ENDPOINT_TABLE
    }


class AppConfig(_Strict):
    """The structured part of the configuration (the YAML file)."""

    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    routing: dict[str, RouteConfig] = Field(default_factory=_default_routing)
    batching: dict[str, BatchPolicy] = Field(default_factory=_default_batching)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    monitors: MonitorsConfig = Field(default_factory=MonitorsConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("routing", mode="before")
    @classmethod
    def _routing_over_defaults(cls, value: object) -> object:
        known = {name: None for name in ENDPOINT_NAMES}
        return _merged_over_defaults(value, _default_routing(), "endpoint", known)

    @field_validator("batching", mode="before")
    @classmethod
    def _batching_over_defaults(cls, value: object) -> object:
        known = {name: None for name in ENDPOINT_NAMES}
        return _merged_over_defaults(value, _default_batching(), "endpoint", known)

    def tenant_for_key(self, api_key: str) -> str | None:
        """The tenant owning `api_key`, or None."""
        digest = hash_api_key(api_key)
        for name, tenant in self.tenants.items():
            if digest in tenant.api_key_sha256:
                return name
        return None


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


MIN_AUDIT_KEY_BYTES = 16


class Settings(BaseSettings):
    """Flat settings from `SERVEWATCH_*` variables; `config` holds the parsed YAML file."""

    model_config = SettingsConfigDict(env_prefix="SERVEWATCH_", extra="ignore", frozen=True)

    home: Path = Path("var")
    database_url: str | None = None
    config_file: Path | None = None
    models_home: Path | None = None
    use_cuda: bool = True
    # `single`: one Bento service runs everything in each worker; `split`: an API gateway calls
    # one model service per model family (docs/service.md, "Topology").
    topology: Literal["single", "split"] = "single"
    # Split topology: worker processes of each model service, and whether the bulk route gets
    # a model service of its own (so a slow bulk request never queues before interactive ones).
    model_service_workers: int = Field(default=1, ge=1, le=64)
    bulk_model_service: bool = False
    ort_intra_op_threads: int = Field(default=1, ge=0)
    ort_inter_op_threads: int = Field(default=1, ge=0)
    metrics_enabled: bool = True
    # BentoML's own request metrics and access log label the raw path (a path scanner adds
    # series without bound) and repeat servewatch's catalog: off unless asked for (benchmarks).
    bentoml_instrumentation: bool = False
    # servewatch's own access log: one line per request, every field from a bounded set.
    access_log: bool = False
    # Metric updates are summed in memory and written this often (0: as they happen).
    metrics_flush_interval_s: float = Field(default=1.0, ge=0)
    # Allocations between the garbage collector's passes over its youngest generation in a
    # worker (Python's own is 700). A pass costs about the same whatever the threshold, as it
    # mostly finds the requests in flight (service/collector.py).
    gc_young_threshold: int = Field(default=20_000, ge=100)
    # Honour X-Servewatch-Fault headers (demos and end-to-end tests only).
    fault_injection: bool = False
    prediction_log_enabled: bool = True
    # How often each worker reads the canary rollouts in force from the store (0: never).
    rollout_poll_interval_s: float = Field(default=2.0, ge=0)
    # Answered requests waiting for the log's writer (a bulk request counts once, whatever
    # its number of rows); beyond it they go to a spill file.
    log_queue_size: int = Field(default=100_000, ge=1)
    # Rows per write to the store, and the longest a row waits for one: each write has a fixed
    # cost (a transaction, the audit block), and the journal, not the store, makes a row
    # durable (1 s against 0.5 s: writer CPU -7 %, throughput ratio +0.9 %; benchmarks.md).
    log_batch_size: int = Field(default=1000, ge=1)
    log_flush_interval_s: float = Field(default=1.0, gt=0)
    # The write-ahead journal (service/log_journal.py): an answered request's records reach the
    # kernel before its answer goes out, so a killed worker loses none. fsync covers a machine
    # crash: `interval` (every log_fsync_interval_s), `batch` (every writer turn) or `off`.
    log_journal: bool = True
    log_fsync: Literal["off", "batch", "interval"] = "interval"
    log_fsync_interval_s: float = Field(default=1.0, gt=0)
    # The audit log's HMAC key (inputs are stored as HMAC digests): a file holding it, or the
    # key itself. Read only by the prediction log's writer, never by the model code path.
    audit_key_file: Path | None = None
    audit_key: SecretStr | None = None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'servewatch.db').as_posix()}"

    @property
    def bentoml_home(self) -> Path:
        return self.models_home or self.home / "bentoml"

    @property
    def spill_dir(self) -> Path:
        return self.home / "spill"

    @property
    def reports_dir(self) -> Path:
        """Where reports are written and served from (`/reports` of the monitors process)."""
        return self.home / "reports"

    def audit_hmac_key(self) -> bytes | None:
        """The audit log's HMAC key, from the secret file or the variable (None: not set)."""
        if self.audit_key_file is not None:
            try:
                key = self.audit_key_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    f"SERVEWATCH_AUDIT_KEY_FILE: cannot read {self.audit_key_file}: {exc.strerror}"
                ) from exc
        elif self.audit_key is not None:
            key = self.audit_key.get_secret_value().encode()
        else:
            return None
        if len(key) < MIN_AUDIT_KEY_BYTES:
            raise ConfigError(f"the audit key must be at least {MIN_AUDIT_KEY_BYTES} bytes long")
        return key

    @cached_property
    def config(self) -> AppConfig:
        return load_app_config(self.config_file)


def load_app_config(path: Path | None) -> AppConfig:
    """Parse and validate the YAML config file (defaults when `path` is None)."""
    if path is None:
        return AppConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"config file {path}: {_describe(exc)}") from exc


def app_config_yaml(config: AppConfig) -> str:
    """`config` as YAML that `load_app_config` reads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (plus `overrides`), config file parsed eagerly."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"environment: {_describe(exc, prefix='SERVEWATCH_')}") from exc
    settings.config  # noqa: B018 - fail at start-up, not at first use
    return settings


def use_bentoml_home(settings: Settings) -> Path:
    """Point BentoML's model store at the settings' home; call before importing bentoml."""
    home = settings.bentoml_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(home)
    # BentoML reports usage over HTTP on model creation unless told not to.
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return home


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        field = f"{prefix}{loc.upper()}" if prefix else loc
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)
