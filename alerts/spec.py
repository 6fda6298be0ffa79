"""The alerting spec: SLO objectives, burn-rate windows, thresholds and receivers as data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.catalog import LATENCY_BUCKETS, MODEL_CALL_ERROR_REASONS
from core.config import AlertSeverity
from core.contracts import MONITOR_NAMES, OUTCOMES

SPEC_FILE = Path(__file__).with_name("spec.yaml")

Severity = AlertSeverity
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNIT_SECONDS = (86400, 3600, 60, 1)


class SpecError(Exception):
    """The alerting spec is invalid; the message names the field."""


def duration_seconds(text: str) -> int:
    """Seconds in a Prometheus duration made of d, h, m and s parts (`1d2h`, `30m`, `0m`)."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 5m, 1h or 1d12h")
    return sum(
        int(part or 0) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)
    )


def duration_text(seconds: int) -> str:
    """A Prometheus duration for `seconds`, largest units first (3600 → 1h, 5400 → 1h30m)."""
    parts = []
    for unit, suffix in zip(_UNIT_SECONDS, "dhms", strict=True):
        if seconds >= unit:
            parts.append(f"{seconds // unit}{suffix}")
            seconds %= unit
    return "".join(parts) or "0s"


def _duration(text: str) -> str:
    duration_seconds(text)
    return text


def _alert_name(name: str) -> str:
    if not re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*", name):
        raise ValueError(f"{name!r} is not a CamelCase alert name")
    return name


Duration = Annotated[str, AfterValidator(_duration)]
AlertName = Annotated[str, AfterValidator(_alert_name)]
Share = Annotated[float, Field(gt=0, lt=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Alert(_Strict):
    """What every alert carries: its name, severity and how long the condition must hold."""

    alert: AlertName
    severity: Severity
    for_: Duration = Field(default="0m", alias="for")


class BurnWindow(_Strict):
    """Fire when the error ratio exceeds factor × budget over both windows."""

    factor: float = Field(gt=0)
    long: Duration
    short: Duration

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnWindow:
        if duration_seconds(self.short) >= duration_seconds(self.long):
            raise ValueError(f"short window {self.short} must be shorter than {self.long}")
        return self


class BurnAlert(_Strict):
    """One alert per SLO (`<Prefix><Slo><suffix>`) OR-ing its window pairs."""

    suffix: AlertName
    severity: Severity
    for_: Duration = Field(default="0m", alias="for")
    windows: tuple[BurnWindow, ...] = Field(min_length=1)


class AvailabilitySlo(_Strict):
    """Share of requests answered without a server-side error; user mistakes count for neither."""

    kind: Literal["availability"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    objective: Share
    good_outcomes: tuple[str, ...] = ("ok",)
    bad_outcomes: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _outcomes(self) -> AvailabilitySlo:
        unknown = set(self.good_outcomes + self.bad_outcomes) - set(OUTCOMES)
        if unknown:
            raise ValueError(f"unknown outcomes {sorted(unknown)}; the catalog has {OUTCOMES}")
        if set(self.good_outcomes) & set(self.bad_outcomes):
            raise ValueError("an outcome cannot be both good and bad")
        return self


class LatencySlo(_Strict):
    """Share of requests served within a bucket boundary of the request-duration histogram."""

    kind: Literal["latency"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    objective: Share
    threshold_seconds: float

    @model_validator(mode="after")
    def _on_a_bucket(self) -> LatencySlo:
        if self.threshold_seconds not in LATENCY_BUCKETS:
            raise ValueError(
                f"threshold_seconds {self.threshold_seconds} is not a bucket boundary of "
                f"servewatch_request_duration_seconds {LATENCY_BUCKETS}"
            )
        return self


Slo = Annotated[AvailabilitySlo | LatencySlo, Field(discriminator="kind")]


class SloSpec(_Strict):
    alert_prefix: AlertName = "Servewatch"
    period: Duration = "30d"
    objectives: tuple[Slo, ...] = Field(min_length=1)
    burn_alerts: tuple[BurnAlert, ...] = Field(min_length=1)


class MonitorAlert(Alert):
    """A monitor's status at or above `status` for a sustained period, per model and tenant."""

    monitor: str
    status: Literal["warn", "alert"] = "alert"

    @model_validator(mode="after")
    def _known_monitor(self) -> MonitorAlert:
        if self.monitor not in MONITOR_NAMES:
            raise ValueError(f"unknown monitor {self.monitor!r}; the catalog has {MONITOR_NAMES}")
        return self


class DriftAlert(MonitorAlert):
    """A drift alert, which holds through windows with too few predictions to judge."""

    # How long after the last judged value a firing alert may hold while the monitor reports
    # insufficient_data: thin data is no evidence that the drift is over.
    hold_insufficient: Duration = "24h"


class TriageSpec(_Strict):
    """Platform signals a drift alert's description reports for the same model version."""

    errors: str  # the availability SLO whose bad outcomes count as server errors
    latency: str  # the latency SLO whose threshold the p99 is held to
    shed_outcome: str = "overloaded"  # requests refused for lack of capacity
    shed_ratio: Share = 0.01

    @model_validator(mode="after")
    def _known_outcome(self) -> TriageSpec:
        if self.shed_outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.shed_outcome!r}; the catalog has {OUTCOMES}")
        return self


class SchemaFailureAlert(Alert):
    ratio: Share
    window: Duration


class DroppedRecordsAlert(Alert):
    window: Duration


class SpillBacklogAlert(Alert):
    records: int = Field(ge=0)


class ReplayLagAlert(Alert):
    lag: Duration


class PredictionLogSpec(_Strict):
    dropped: DroppedRecordsAlert
    spill_backlog: SpillBacklogAlert
    replay_lag: ReplayLagAlert


class BudgetAlert(Alert):
    """A tenant's week-to-date cost reached `share` of its weekly budget."""

    share: float = Field(gt=0)


class StalenessAlert(Alert):
    """A monitor with no successful run for `missed_runs` of its scheduled intervals."""

    missed_runs: int = Field(ge=1)


class TargetAlert(Alert):
    """A scrape target down or missing."""

    job: str


class CanaryErrorsAlert(Alert):
    """The candidate's server-error ratio above factor × the baseline's plus margin."""

    factor: float = Field(ge=1)
    margin: Share


class CanaryLatencyAlert(Alert):
    """The candidate's latency quantile above factor × the baseline's, and above a floor."""

    quantile: float = Field(gt=0, lt=1)
    factor: float = Field(gt=1)
    floor_seconds: float = Field(ge=0)


class CanaryDriftAlert(Alert):
    """The candidate's mean confidence below the baseline's by more than `confidence_drop`."""

    confidence_drop: Share


class CanarySpec(_Strict):
    """A canary judged against its baseline on the same endpoint while its rollout is in force
    (0 < weight < 100), over `window`, once the candidate answered `min_requests` in it."""

    window: Duration
    min_requests: int = Field(ge=1)
    errors: CanaryErrorsAlert
    latency: CanaryLatencyAlert
    drift: CanaryDriftAlert


class ModelCallErrorsAlert(Alert):
    """Failed gateway calls / all gateway calls to a model service above `ratio`."""

    ratio: Share


class ModelServiceDownAlert(Alert):
    """At least `ratio` of the calls to a model service failed for one of `reasons`."""

    ratio: Share
    reasons: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_reasons(self) -> ModelServiceDownAlert:
        unknown = set(self.reasons) - set(MODEL_CALL_ERROR_REASONS)
        if unknown:
            raise ValueError(
                f"unknown reasons {sorted(unknown)}; the catalog has {MODEL_CALL_ERROR_REASONS}"
            )
        return self


class ModelCallLatencyAlert(Alert):
    """A quantile of the gateway's wait for a model service above `threshold_seconds`."""

    quantile: float = Field(gt=0, lt=1)
    threshold_seconds: float = Field(gt=0)


class ModelServicesSpec(_Strict):
    """The gateway-to-model-service hop of the split topology, judged over `window` per model
    service (and model, for errors and latency)."""

    window: Duration
    errors: ModelCallErrorsAlert
    down: ModelServiceDownAlert
    slow: ModelCallLatencyAlert


class AlertmanagerSpec(_Strict):
    """How Alertmanager groups and repeats; the receivers come from the app config."""

    group_by: tuple[str, ...] = ("alertname", "model_name", "tenant")
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"
    # Alerts whose firing mutes the drift and traffic alerts (the outage is their cause).
    mute_drift_while: tuple[AlertName, ...] = ()


class AlertSpec(_Strict):
    """Everything `servewatch alerts build` renders."""

    # The app config (relative to the spec file) the rules are built for: its alerting section
    # gives the runbook and report links and the receivers, its monitor schedules the staleness
    # limits and the drift windows. None: the built-in defaults.
    app_config: str | None = None
    slo: SloSpec
    drift: tuple[DriftAlert, ...]
    triage: TriageSpec
    traffic: MonitorAlert
    output_schema: SchemaFailureAlert
    prediction_log: PredictionLogSpec
    budget: tuple[BudgetAlert, ...]
    monitor_staleness: StalenessAlert
    results_staleness: StalenessAlert
    targets: tuple[TargetAlert, ...]
    canary: CanarySpec
    model_services: ModelServicesSpec
    alertmanager: AlertmanagerSpec

    @model_validator(mode="after")
    def _references(self) -> AlertSpec:
        names = [a.alert for a in self.named_alerts()] + self.slo_alert_names()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert names must be unique: {duplicates}")
        slo_names = [o.name for o in self.slo.objectives]
        if len(slo_names) != len(set(slo_names)):
            raise ValueError("SLO names must be unique")
        unknown = set(self.alertmanager.mute_drift_while) - set(names)
        if unknown:
            raise ValueError(f"mute_drift_while names unknown alerts {sorted(unknown)}")
        self._triage_slos()
        return self

    def _triage_slos(self) -> None:
        kinds = {objective.name: objective.kind for objective in self.slo.objectives}
        for field, kind in (("errors", "availability"), ("latency", "latency")):
            name = getattr(self.triage, field)
            if kinds.get(name) != kind:
                raise ValueError(f"triage.{field}: {name!r} names no {kind} SLO of slo.objectives")

    def objective(self, name: str) -> AvailabilitySlo | LatencySlo:
        """The SLO named `name`."""
        return next(o for o in self.slo.objectives if o.name == name)

    def named_alerts(self) -> list[Alert]:
        """Alerts whose name the spec gives (everything but the SLO burn alerts)."""
        log = self.prediction_log
        return [
            *self.drift,
            self.traffic,
            self.output_schema,
            log.dropped,
            log.spill_backlog,
            log.replay_lag,
            *self.budget,
            self.monitor_staleness,
            self.results_staleness,
            *self.targets,
            self.canary.errors,
            self.canary.latency,
            self.canary.drift,
            self.model_services.errors,
            self.model_services.down,
            self.model_services.slow,
        ]

    def slo_alert_names(self) -> list[str]:
        return [
            burn_alert_name(self.slo, objective, burn)
            for objective in self.slo.objectives
            for burn in self.slo.burn_alerts
        ]


def burn_alert_name(slo: SloSpec, objective: AvailabilitySlo | LatencySlo, burn: BurnAlert) -> str:
    """`ServewatchAvailabilityFastBurn` from the prefix, the SLO name and the burn suffix."""
    camel = "".join(part.capitalize() for part in objective.name.split("_"))
    return f"{slo.alert_prefix}{camel}{burn.suffix}"


def parse_spec(raw: object, source: str = "spec") -> AlertSpec:
    """Validate a parsed spec document."""
    try:
        return AlertSpec.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise SpecError(f"{source}: {details}") from exc


def app_config_path(spec: AlertSpec, spec_file: Path = SPEC_FILE) -> Path | None:
    """Where the app config the spec names lives, or None."""
    return None if spec.app_config is None else spec_file.parent / spec.app_config


def load_spec(path: Path = SPEC_FILE) -> AlertSpec:
    """Read and validate the spec file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: {exc}") from exc
    return parse_spec(raw, str(path))
