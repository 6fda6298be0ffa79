"""The Serving dashboard's model-services row: the split topology's hop from the gateway to each
model service (latency, failed calls by reason, calls in flight), per model service."""

from __future__ import annotations

from alerts.model_services import CALLS, ERRORS, SERVICE_MODEL
from alerts.slo import number, percent
from alerts.spec import AlertSpec
from dashboards.layout import Row
from dashboards.links import Runbooks
from dashboards.panels import Query, timeseries
from dashboards.serving import MODEL, RATE, error_share

SPLIT_ONLY = (
    "Split topology only (`servewatch serve --topology split`); empty with a single service."
)


def model_services_row(spec: AlertSpec, runbooks: Runbooks) -> Row:
    """Latency and failures of the gateway's calls to each model service, and calls in flight."""
    hop = spec.model_services
    slow, errors, down = hop.slow, hop.errors, hop.down
    bucket = f"{CALLS}_bucket{{{MODEL}}}"
    failed = f"{ERRORS}{{{MODEL}}}"
    calls = f"{CALLS}_count{{{MODEL}}}"
    return Row(
        "Model services (split topology)",
        [
            timeseries(
                "Gateway-to-model latency p50 / p99 by service",
                "Time the gateway waited for each model service's answer per call "
                f"(servewatch_model_call_duration_seconds); the dashed line is the "
                f"{number(slow.threshold_seconds)}s the p{number(slow.quantile * 100)} may reach "
                f"before {slow.alert}. {SPLIT_ONLY}",
                "s",
                [
                    Query(
                        f"histogram_quantile({q}, sum by (service, le) (rate({bucket}[{RATE}])))",
                        f"p{round(q * 100)} {{{{service}}}}",
                    )
                    for q in (0.5, 0.99)
                ],
                width=8,
                thresholds=(("green", None), ("red", slow.threshold_seconds)),
                draw_thresholds=True,
                links=runbooks.links(slow.alert),
            ),
            timeseries(
                "Model call errors by reason",
                "Gateway calls to a model service that failed, per second, by service and reason "
                "(timeout, unavailable, overloaded, model_error); the gateway answers each with "
                f"the error envelope. {SPLIT_ONLY}",
                "reqps",
                [
                    Query(
                        f"sum by (service, reason) (rate({failed}[{RATE}]))",
                        "{{service}} {{reason}}",
                    )
                ],
                width=8,
                stack=True,
                links=runbooks.links(errors.alert, down.alert),
            ),
            timeseries(
                "Model service calls in flight",
                "Calls the gateway has sent to each model service and not had answered yet "
                f"(servewatch_model_service_queue_depth): the service's queue. {SPLIT_ONLY}",
                "short",
                [Query("sum by (service) (servewatch_model_service_queue_depth)", "{{service}}")],
                width=8,
                links=runbooks.links(slow.alert),
            ),
            timeseries(
                "Model calls by service",
                "Calls per second from the gateway to each model service, failed ones included. "
                f"{SPLIT_ONLY}",
                "reqps",
                [Query(f"sum by (service) (rate({calls}[{RATE}]))", "{{service}}")],
                stack=True,
            ),
            timeseries(
                "Model call error ratio by service",
                "Share of the gateway's calls to each model service and model that failed, any "
                f"reason; above the dashed line ({percent(errors.ratio)}) for {errors.for_}, "
                f"{errors.alert} fires. {SPLIT_ONLY}",
                "percentunit",
                [Query(error_share(failed, calls, SERVICE_MODEL), "{{service}} {{model_name}}")],
                thresholds=(("green", None), ("orange", errors.ratio)),
                draw_thresholds=True,
                max_value=1,
                links=runbooks.links(errors.alert, down.alert),
            ),
        ],
    )
