"""Model-quality alerts: drift and class shift from the monitors, output-schema failures."""

from __future__ import annotations

from alerts.rules import AlertRule, RuleGroup
from alerts.slo import percent
from alerts.spec import MonitorAlert, SchemaFailureAlert
from core.contracts import MONITOR_TABLE, STATUS_CODES

MODEL_TENANT = "model_name, model_version, tenant"
_KEY = f"monitor, metric, {MODEL_TENANT}"
_WHAT_MOVED = {monitor.name: monitor.moved for monitor in MONITOR_TABLE}


def monitor_alert(spec: MonitorAlert, runbook: str) -> AlertRule:
    """A monitor metric judged at or above `status`, with its value, per model and tenant."""
    selector = f'{{monitor="{spec.monitor}"}}'
    expr = (
        f"max by (metric, {MODEL_TENANT}) (\n"
        f"  servewatch_monitor_value{selector}\n"
        f"  and on ({_KEY})\n"
        f"  (servewatch_monitor_status{selector} >= {STATUS_CODES[spec.status]})\n"
        f")"
    )
    return AlertRule(
        name=spec.alert,
        expr=expr,
        severity=spec.severity,
        for_=spec.for_,
        summary=(
            "The {{ $labels.model_name }} {{ $labels.model_version }} "
            f"{_WHAT_MOVED[spec.monitor]} for tenant {{{{ $labels.tenant }}}}."
        ),
        description=(
            f"The {spec.monitor} monitor has judged {{{{ $labels.metric }}}} = "
            '{{ printf "%.3f" $value }} '
            f"at {spec.status} level or above for {spec.for_} "
            "(model {{ $labels.model_name }}, version {{ $labels.model_version }}, "
            'tenant {{ $labels.tenant }}; "*" means all).'
        ),
        runbook_url=f"{runbook}#{spec.alert.lower()}",
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


def quality_group(
    drift: tuple[MonitorAlert, ...], schema: SchemaFailureAlert, runbook: str
) -> RuleGroup:
    """Drift alerts and the output-schema alert."""
    rules = (*(monitor_alert(d, runbook) for d in drift), schema_failure_alert(schema, runbook))
    return RuleGroup("servewatch-model-quality", rules)
