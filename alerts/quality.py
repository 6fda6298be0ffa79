"""Model-quality alerts: drift and class shift from the monitors, stopped traffic, and
output-schema failures."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.rules import AlertRule, RuleGroup
from alerts.slo import percent
from alerts.spec import AlertSpec, DriftAlert, MonitorAlert, SchemaFailureAlert
from alerts.templating import urlquery
from alerts.triage import monitor_window, platform_clause, platform_group
from core.config import AlertingConfig, MonitorSchedule
from core.contracts import MONITOR_TABLE, STATUS_CODES

MODEL_TENANT = "model_name, model_version, tenant"
_KEY = f"monitor, metric, {MODEL_TENANT}"
_ALERT_KEY = f"metric, {MODEL_TENANT}"
_WHAT_MOVED = {monitor.name: monitor.moved for monitor in MONITOR_TABLE}
# The labels naming a report's folder after its monitor's (core.reports.report_path's order).
_REPORT_KEY = ("model_name", "model_version", "tenant")
INSUFFICIENT = STATUS_CODES["insufficient_data"]


def judged(spec: MonitorAlert) -> str:
    """The metric's value where the monitor judged it at or above the alert's status."""
    selector = f'{{monitor="{spec.monitor}"}}'
    return (
        f"max by ({_ALERT_KEY}) (\n"
        f"  servewatch_monitor_value{selector}\n"
        f"  and on ({_KEY})\n"
        f"  (servewatch_monitor_status{selector} >= {STATUS_CODES[spec.status]})\n"
        f")"
    )


def held(spec: DriftAlert) -> str:
    """The last judged value, where the alert fires and the monitor now lacks the data to judge."""
    selector = f'{{monitor="{spec.monitor}"}}'
    return (
        f"max by ({_ALERT_KEY}) (\n"
        f"  last_over_time(servewatch_monitor_value{selector}[{spec.hold_insufficient}])\n"
        f"  and on ({_KEY})\n"
        f"  (servewatch_monitor_status{selector} == {INSUFFICIENT})\n"
        f")\n"
        f'and on ({_ALERT_KEY}) ALERTS{{alertname="{spec.alert}", alertstate="firing"}}'
    )


def _summary(spec: MonitorAlert) -> str:
    return (
        "The {{ $labels.model_name }} {{ $labels.model_version }} "
        f"{_WHAT_MOVED[spec.monitor]} for tenant {{{{ $labels.tenant }}}}."
    )


def _judgement(spec: MonitorAlert) -> str:
    return (
        f"The {spec.monitor} monitor has judged {{{{ $labels.metric }}}} = "
        '{{ printf "%.3f" $value }} '
        f"at {spec.status} level or above for {spec.for_} "
        "(model {{ $labels.model_name }}, version {{ $labels.model_version }}, "
        'tenant {{ $labels.tenant }}; "*" means all).'
    )


def insufficient_query(spec: MonitorAlert) -> str:
    """PromQL format (metric, model, version, tenant): the monitor lacks data for the key now."""
    return (
        f"servewatch_monitor_status{{monitor='{spec.monitor}', metric=%q, model_name=%q, "
        f"model_version=%q, tenant=%q}} == {INSUFFICIENT}"
    )


def _holding(spec: DriftAlert, traffic: MonitorAlert) -> str:
    args = " ".join(f"$labels.{label}" for label in _ALERT_KEY.split(", "))
    return (
        f'{{{{ with query (printf "{insufficient_query(spec)}" {args}) }}}} '
        "The latest window had too few predictions to judge: the alert holds until a window "
        f"with enough of them clears it (at most {spec.hold_insufficient} after the last judged "
        f"value); traffic that stopped alerts as {traffic.alert}.{{{{ end }}}}"
    )


def report_link(reports_base_url: str, monitor: str) -> str:
    """The template of the latest report's URL for the alert's monitor, model, version and
    tenant: each part percent-encoded as the reports are laid out (`*` is `%2A`)."""
    parts = [urlquery(monitor)] + [f"{{{{ $labels.{label} | urlquery }}}}" for label in _REPORT_KEY]
    return f"{reports_base_url}/{'/'.join(parts)}/latest.html"


def report_url(reports_base_url: str, monitor: str, labels: Mapping[str, str]) -> str:
    """What `report_link` renders to for an alert with `labels`."""
    parts = [urlquery(part) for part in (monitor, *(labels[label] for label in _REPORT_KEY))]
    return f"{reports_base_url}/{'/'.join(parts)}/latest.html"


def drift_alert(
    spec: AlertSpec,
    entry: DriftAlert,
    alerting: AlertingConfig,
    schedules: Mapping[str, MonitorSchedule],
) -> AlertRule:
    """A drift metric judged at or above `status`, held through thin windows once firing."""
    window = monitor_window(schedules, entry.monitor)
    return AlertRule(
        name=entry.alert,
        expr=f"{judged(entry)}\nor\n(\n{held(entry)}\n)",
        severity=entry.severity,
        for_=entry.for_,
        summary=_summary(entry),
        # On two lines: what the monitor judged, then the platform over the same window.
        description=(
            f"{_judgement(entry)}{_holding(entry, spec.traffic)}\n{platform_clause(spec, window)}"
        ),
        runbook_url=f"{alerting.runbook_base_url}#{entry.alert.lower()}",
        extra={"report_url": report_link(alerting.reports_base_url, entry.monitor)},
    )


def traffic_alert(spec: MonitorAlert, alerting: AlertingConfig) -> AlertRule:
    """A model version and tenant whose predictions stopped or fell far below their usual rate."""
    return AlertRule(
        name=spec.alert,
        expr=judged(spec),
        severity=spec.severity,
        for_=spec.for_,
        summary=_summary(spec),
        description=(
            "{{ $labels.model_name }} {{ $labels.model_version }} got "
            "{{ $value | humanizePercentage }} fewer predictions for tenant "
            '{{ $labels.tenant }} ("*" means all) than its usual rate over the '
            f"{spec.monitor} monitor's last window, for {spec.for_}; the drift monitors cannot "
            "judge windows this thin."
        ),
        runbook_url=f"{alerting.runbook_base_url}#{spec.alert.lower()}",
    )


def schema_failure_expr(spec: SchemaFailureAlert) -> str:
    """Broken outputs / all outputs; a model whose every output broke still counts."""
    by = "sum by (model_name, model_version)"
    failures = f"{by} (rate(servewatch_output_schema_failures_total[{spec.window}]))"
    good = f"{by} (rate(servewatch_prediction_confidence_count[{spec.window}]))"
    lines = [
        failures,
        "/",
        "(",
        f"  {failures}",
        "  +",
        f"  ({good} or 0 * {failures})",
        ")",
        f"> {spec.ratio}",
    ]
    return "\n".join(lines)


def schema_failure_alert(spec: SchemaFailureAlert, runbook: str) -> AlertRule:
    return AlertRule(
        name=spec.alert,
        expr=schema_failure_expr(spec),
        severity=spec.severity,
        for_=spec.for_,
        summary=(
            "Outputs of {{ $labels.model_name }} {{ $labels.model_version }} "
            "break the output schema."
        ),
        description=(
            "{{ $value | humanizePercentage }} of the inference outputs of "
            "{{ $labels.model_name }} {{ $labels.model_version }} were non-finite, did not sum "
            f"to 1 or named an unknown class over the last {spec.window} "
            f"(threshold {percent(spec.ratio)}); those requests answered model_error."
        ),
        runbook_url=f"{runbook}#{spec.alert.lower()}",
    )


def quality_groups(
    spec: AlertSpec, alerting: AlertingConfig, schedules: Mapping[str, MonitorSchedule]
) -> list[RuleGroup]:
    """The platform signals the drift descriptions read, then the model-quality alerts."""
    windows = [monitor_window(schedules, entry.monitor) for entry in spec.drift]
    rules = (
        *(drift_alert(spec, entry, alerting, schedules) for entry in spec.drift),
        traffic_alert(spec.traffic, alerting),
        schema_failure_alert(spec.output_schema, alerting.runbook_base_url),
    )
    return [platform_group(spec, windows), RuleGroup("servewatch-model-quality", rules)]
