"""Alerts on the split topology's hop from the gateway to each model service: failed calls, a
service the gateway cannot reach, and slow answers (per model service, from the gateway's view)."""

from __future__ import annotations

from alerts.promql import one_of
from alerts.rules import AlertRule, RuleGroup
from alerts.slo import number, percent
from alerts.spec import ModelServicesSpec

CALLS = "servewatch_model_call_duration_seconds"
ERRORS = "servewatch_model_call_errors_total"
# Errors and latency per model service and model; reachability per model service.
SERVICE_MODEL = "service, model_name"


def call_error_ratio(window: str, by: str, reasons: tuple[str, ...] = ()) -> str:
    """Failed calls (for `reasons`, else any) over all calls, per `by`.

    Every call is timed, failed ones too, so the histogram's count is the number of calls; a
    service whose calls all fail still has a ratio (1), and one without calls has none.
    """
    matcher = f'{{reason=~"{one_of(reasons)}"}}' if reasons else ""
    return (
        f"sum by ({by}) (rate({ERRORS}{matcher}[{window}]))\n"
        "/\n"
        f"sum by ({by}) (rate({CALLS}_count[{window}]))"
    )


def call_latency(quantile: float, window: str, by: str = SERVICE_MODEL) -> str:
    """The `quantile` of the gateway's wait for a model service's answer, per `by`."""
    return (
        f"histogram_quantile({number(quantile)}, sum by ({by}, le) "
        f"(rate({CALLS}_bucket[{window}])))"
    )


def errors_alert(spec: ModelServicesSpec, runbook: str) -> AlertRule:
    alert = spec.errors
    return AlertRule(
        name=alert.alert,
        expr=f"{call_error_ratio(spec.window, SERVICE_MODEL)}\n> {number(alert.ratio)}",
        severity=alert.severity,
        for_=alert.for_,
        summary="Gateway calls to model service {{ $labels.service }} are failing.",
        description=(
            "{{ $value | humanizePercentage }} of the gateway's calls to model service "
            "{{ $labels.service }} ({{ $labels.model_name }}) failed over the last "
            f"{spec.window} (threshold {percent(alert.ratio)}, for {alert.for_}); the gateway "
            "answered those requests with the error envelope (timeout, overloaded or "
            "model_error), so they burn the availability SLO too."
        ),
        runbook_url=f"{runbook}#{alert.alert.lower()}",
    )


def down_alert(spec: ModelServicesSpec, runbook: str) -> AlertRule:
    alert = spec.down
    reasons = " or ".join(alert.reasons)
    return AlertRule(
        name=alert.alert,
        expr=(
            f"{call_error_ratio(spec.window, 'service', alert.reasons)}\n>= {number(alert.ratio)}"
        ),
        severity=alert.severity,
        for_=alert.for_,
        summary="Model service {{ $labels.service }} does not answer the gateway.",
        description=(
            "{{ $value | humanizePercentage }} of the gateway's calls to model service "
            f"{{{{ $labels.service }}}} failed as {reasons} over the last {spec.window}, at or "
            f"above {percent(alert.ratio)} for {alert.for_}: its workers are down, restarting "
            "or stuck, and the requests of the routes it serves fail."
        ),
        runbook_url=f"{runbook}#{alert.alert.lower()}",
    )


def slow_alert(spec: ModelServicesSpec, runbook: str) -> AlertRule:
    alert = spec.slow
    name = f"p{number(alert.quantile * 100)}"
    return AlertRule(
        name=alert.alert,
        expr=(f"{call_latency(alert.quantile, spec.window)}\n> {number(alert.threshold_seconds)}"),
        severity=alert.severity,
        for_=alert.for_,
        summary="Model service {{ $labels.service }} answers the gateway slowly.",
        description=(
            f"The gateway's {name} wait for model service {{{{ $labels.service }}}} "
            "({{ $labels.model_name }}) was {{ $value | humanizeDuration }} over the last "
            f"{spec.window}, above {number(alert.threshold_seconds)}s for {alert.for_}; the "
            "requests of its routes are slower by as much."
        ),
        runbook_url=f"{runbook}#{alert.alert.lower()}",
    )


def model_services_group(spec: ModelServicesSpec, runbook: str) -> RuleGroup:
    rules = (errors_alert(spec, runbook), down_alert(spec, runbook), slow_alert(spec, runbook))
    return RuleGroup("servewatch-model-services", rules)
