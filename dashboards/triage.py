"""The Triage dashboard: per model version, the platform's signals above the model's.

An incident on the platform moves latency, errors or saturation first; a model-quality
regression moves drift and shift while those stay flat. One row per version, repeated by
Grafana, with the release and alert annotations of the dashboard across every panel.
"""

from __future__ import annotations

from alerts.promql import one_of
from alerts.slo import percent
from alerts.spec import AlertSpec, AvailabilitySlo, LatencySlo
from core.config import MonitorsConfig
from core.contracts import monitor
from dashboards.layout import Row
from dashboards.links import Runbooks
from dashboards.model_quality import MODEL_VERSION, STATUS_MAPPING, monitor_panel
from dashboards.panels import BASE, Query, Sized, Steps, timeseries
from dashboards.serving import availability_selectors, slo_links, slo_of
from dashboards.variables import VERSION

RATE = "$__rate_interval"
REQUESTS = f'{MODEL_VERSION}, tenant=~"$tenant", endpoint=~"$endpoint"'
# The monitors that judge the model's answers (the others watch the schema, cost or traffic).
QUALITY_MONITORS = tuple(monitor(name).name for name in ("confidence_drift", "class_shift"))
PLATFORM_NOTE = "Compare with the drift panels below it: a platform incident shows here first."
QUALITY_NOTE = "Compare with the platform panels above it: a model regression shows here alone."


def latency(spec: AlertSpec, runbooks: Runbooks) -> Sized:
    bucket = f"servewatch_request_duration_seconds_bucket{{{REQUESTS}}}"
    slo = slo_of(spec, LatencySlo)
    bound = (("green", None), ("red", slo.threshold_seconds)) if slo else (("green", None),)
    return timeseries(
        "Latency p50 / p99",
        "Quantiles of the request duration of this version's requests"
        + (
            f"; the dashed line is the {slo.threshold_seconds:g}s bound of the latency SLO. "
            if slo
            else ". "
        )
        + PLATFORM_NOTE,
        "s",
        [
            Query(
                f"histogram_quantile({q}, sum by (model_name, le) (rate({bucket}[{RATE}])))",
                f"p{round(q * 100)} {{{{model_name}}}}",
            )
            for q in (0.5, 0.99)
        ],
        width=8,
        thresholds=bound,
        draw_thresholds=slo is not None,
        links=slo_links(spec, runbooks, LatencySlo),
    )


def errors(spec: AlertSpec, runbooks: Runbooks) -> Sized:
    """Server-side errors per class as a share of this version's counted requests."""
    availability = slo_of(spec, AvailabilitySlo)
    thresholds: Steps = BASE
    if availability is not None:
        bad, counted = availability_selectors(availability, REQUESTS)
        budget = 1 - availability.objective
        what = f"failed with a server-side error ({', '.join(availability.bad_outcomes)})"
        line = f"; the dashed line is the {percent(budget)} error budget of the SLO"
        thresholds = (("green", None), ("red", budget))
    else:
        bad = f'servewatch_requests_total{{{REQUESTS}, outcome!="ok"}}'
        counted = f"servewatch_requests_total{{{REQUESTS}}}"
        what, line = "were not ok", ""
    return timeseries(
        "Error ratio by class",
        f"Share of this version's requests that {what}, stacked by class{line}. {PLATFORM_NOTE}",
        "percentunit",
        [
            Query(
                f"sum by (model_name, outcome) (rate({bad}[{RATE}]))\n"
                "/ ignoring (outcome) group_left\n"
                f"sum by (model_name) (rate({counted}[{RATE}]))",
                "{{model_name}} {{outcome}}",
            )
        ],
        width=8,
        stack=True,
        thresholds=thresholds,
        draw_thresholds=availability is not None,
        links=slo_links(spec, runbooks, AvailabilitySlo),
    )


def saturation() -> Sized:
    batch = "servewatch_batch_size"
    return timeseries(
        "Saturation",
        "Requests in flight and busy workers (per selected endpoint) and items queued for a "
        "batch (per model): the service exports these without a version. Mean items per "
        f"inference batch of this version. {PLATFORM_NOTE}",
        "short",
        [
            Query('sum(servewatch_in_flight_requests{endpoint=~"$endpoint"})', "in flight"),
            Query(
                f'sum(rate(servewatch_worker_busy_seconds_total{{endpoint=~"$endpoint"}}[{RATE}]))',
                "busy workers",
            ),
            Query(
                'sum by (model_name) (servewatch_queue_depth{model_name=~"$model"})',
                "queued {{model_name}}",
            ),
            Query(
                f"sum by (model_name) (rate({batch}_sum{{{MODEL_VERSION}}}[{RATE}]))\n/\n"
                f"sum by (model_name) (rate({batch}_count{{{MODEL_VERSION}}}[{RATE}]))",
                "mean batch {{model_name}}",
            ),
        ],
        width=8,
    )


def verdicts(runbooks: Runbooks) -> Sized:
    selector = f'monitor=~"{one_of(QUALITY_MONITORS)}", {MODEL_VERSION}, tenant=~"$tenant"'
    return timeseries(
        "Drift verdicts",
        "Latest status of the confidence-drift and class-shift monitors for this version, per "
        "tenant ('*' = all tenants): the worst of each monitor's metrics, -1 insufficient "
        f"data, 0 ok, 1 warn, 2 alert. {QUALITY_NOTE}",
        "none",
        [
            Query(
                f"max by (model_name, monitor, tenant) (servewatch_monitor_status{{{selector}}})",
                "{{model_name}} {{monitor}} · {{tenant}}",
            )
        ],
        width=8,
        thresholds=(("green", None), ("orange", 1), ("red", 2)),
        draw_thresholds=True,
        min_value=-1,
        max_value=2,
        mappings=[STATUS_MAPPING],
        steps_after=True,
        links=runbooks.drift(*QUALITY_MONITORS),
    )


def quality_values(config: MonitorsConfig, runbooks: Runbooks) -> list[Sized]:
    """The first configured metric of each quality monitor, with its thresholds."""
    panels = []
    for name in QUALITY_MONITORS:
        thresholds = config.thresholds.get(name, {})
        if thresholds:
            metric, threshold = next(iter(thresholds.items()))
            panels.append(monitor_panel(name, metric, threshold, runbooks.drift(name)))
    return panels


def triage_rows(spec: AlertSpec, config: MonitorsConfig, runbooks: Runbooks) -> list[Row]:
    panels = [
        latency(spec, runbooks),
        errors(spec, runbooks),
        saturation(),
        verdicts(runbooks),
        *quality_values(config, runbooks),
    ]
    return [Row(f"Version ${VERSION}", panels, repeat=VERSION)]
