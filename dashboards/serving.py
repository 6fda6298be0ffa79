"""The Serving dashboard: traffic, latency, error budgets, tenants, capacity, prediction log."""

from __future__ import annotations

from typing import TypeVar

from alerts.promql import le, one_of
from alerts.slo import Objective, number, percent, ratio_series, windows
from alerts.spec import AlertSpec, AvailabilitySlo, LatencySlo, SloSpec, duration_seconds
from dashboards.layout import Row
from dashboards.links import Runbooks
from dashboards.panels import Links, Query, Sized, piechart, stat, timeseries

RATE = "$__rate_interval"
MODEL = 'model_name=~"$model"'
ENDPOINT = 'endpoint=~"$endpoint"'
REQUESTS = f'{MODEL}, tenant=~"$tenant", {ENDPOINT}'
SloKind = TypeVar("SloKind", AvailabilitySlo, LatencySlo)
# Error budget left: red once spent, orange under a quarter left.
BUDGET_STEPS = (("red", None), ("orange", 0), ("green", 0.25))


def slo_of(spec: AlertSpec, kind: type[SloKind]) -> SloKind | None:
    """The first objective of `kind` (availability or latency) in the spec, if any."""
    return next((o for o in spec.slo.objectives if isinstance(o, kind)), None)


def slo_links(spec: AlertSpec, runbooks: Runbooks, kind: type[SloKind]) -> Links:
    """Runbooks of the burn alerts of the first objective of `kind`."""
    objective = slo_of(spec, kind)
    return runbooks.slo(objective.name) if objective else []


def error_share(errors: str, valid: str, by: str) -> str:
    """errors/valid per `by`; a group without any error reads 0, not "no data"."""
    bad = f"sum by ({by}) (rate({errors}[{RATE}]))"
    total = f"sum by ({by}) (rate({valid}[{RATE}]))"
    return f"(\n  ({bad} or 0 * {total})\n  /\n  {total}\n)"


def availability_selectors(availability: AvailabilitySlo, labels: str) -> tuple[str, str]:
    """The server-side errors and the requests the availability SLO counts, under `labels`."""
    bad = one_of(availability.bad_outcomes)
    counted = one_of(availability.good_outcomes + availability.bad_outcomes)
    return (
        f'servewatch_requests_total{{{labels}, outcome=~"{bad}"}}',
        f'servewatch_requests_total{{{labels}, outcome=~"{counted}"}}',
    )


def traffic(spec: AlertSpec, runbooks: Runbooks) -> Row:
    errors_runbooks = slo_links(spec, runbooks, AvailabilitySlo)
    panels = [
        timeseries(
            "Request rate by endpoint",
            "Business requests answered per second, all outcomes.",
            "reqps",
            [
                Query(
                    f"sum by (endpoint) (rate(servewatch_requests_total{{{REQUESTS}}}[{RATE}]))",
                    "{{endpoint}}",
                )
            ],
            width=8,
        ),
        timeseries(
            "Errors by class",
            "Non-ok answers per second by error class (DESIGN.md contract 2). Server-side "
            "classes burn the availability SLO; user mistakes do not.",
            "reqps",
            [
                Query(
                    "sum by (outcome) (rate(servewatch_requests_total"
                    f'{{{REQUESTS}, outcome!="ok"}}[{RATE}]))',
                    "{{outcome}}",
                )
            ],
            width=8,
            stack=True,
            links=errors_runbooks,
        ),
        piechart(
            "Error classes over the range",
            "How the non-ok answers of the selected time range split by error class.",
            "short",
            [
                Query(
                    "sum by (outcome) (increase(servewatch_requests_total"
                    f'{{{REQUESTS}, outcome!="ok"}}[$__range]))',
                    "{{outcome}}",
                    instant=True,
                )
            ],
            width=8,
            links=errors_runbooks,
        ),
    ]
    availability = slo_of(spec, AvailabilitySlo)
    if isinstance(availability, AvailabilitySlo):
        errors, valid = availability_selectors(availability, REQUESTS)
        panels.append(
            timeseries(
                "Availability (SLI) by endpoint",
                "Share of requests answered without a server-side error "
                f"({', '.join(availability.bad_outcomes)}); the dashed line is the "
                f"{percent(availability.objective)} objective of alerts/spec.yaml.",
                "percentunit",
                [Query(f"1 - {error_share(errors, valid, 'endpoint')}", "{{endpoint}}")],
                width=24,
                thresholds=(("red", None), ("green", availability.objective)),
                draw_thresholds=True,
                max_value=1,
                links=errors_runbooks,
            )
        )
    return Row("Traffic and errors", panels)


def latency(spec: AlertSpec, runbooks: Runbooks) -> Row:
    bucket = f"servewatch_request_duration_seconds_bucket{{{REQUESTS}}}"
    links = slo_links(spec, runbooks, LatencySlo)
    quantiles = [
        Query(
            f"histogram_quantile({q}, sum by (le) (rate({bucket}[{RATE}])))", f"p{round(q * 100)}"
        )
        for q in (0.5, 0.95, 0.99)
    ]
    panels = [
        timeseries(
            "Request latency p50 / p95 / p99",
            "Quantiles of the time spent in the service per business request, estimated from "
            "the servewatch_request_duration_seconds histogram.",
            "s",
            quantiles,
            links=links,
        ),
        timeseries(
            "p99 latency by endpoint",
            "99th percentile of the request duration per business endpoint.",
            "s",
            [
                Query(
                    f"histogram_quantile(0.99, sum by (endpoint, le) (rate({bucket}[{RATE}])))",
                    "{{endpoint}}",
                )
            ],
            links=links,
        ),
        timeseries(
            "Inference time p50 / p99 by model",
            "ONNX Runtime time per inference batch, by model and execution provider.",
            "s",
            [
                Query(
                    f"histogram_quantile({q}, sum by (model_name, provider, le) "
                    "(rate(servewatch_inference_duration_seconds_bucket"
                    f'{{model_name=~"$model"}}[{RATE}])))',
                    f"p{round(q * 100)} {{{{model_name}}}} ({{{{provider}}}})",
                )
                for q in (0.5, 0.99)
            ],
        ),
    ]
    slo = slo_of(spec, LatencySlo)
    if isinstance(slo, LatencySlo):
        count = f"servewatch_request_duration_seconds_count{{{REQUESTS}}}"
        bound = le(slo.threshold_seconds)
        fast = f'servewatch_request_duration_seconds_bucket{{{REQUESTS}, le="{bound}"}}'
        panels.append(
            timeseries(
                f"Requests within {slo.threshold_seconds:g}s (latency SLI)",
                f"Share of requests served within the {slo.threshold_seconds:g}s bucket boundary; "
                f"the dashed line is the {percent(slo.objective)} objective of alerts/spec.yaml.",
                "percentunit",
                [
                    Query(
                        f"sum by (endpoint) (rate({fast}[{RATE}]))\n/\n"
                        f"sum by (endpoint) (rate({count}[{RATE}]))",
                        "{{endpoint}}",
                    )
                ],
                thresholds=(("red", None), ("green", slo.objective)),
                draw_thresholds=True,
                max_value=1,
                links=links,
            )
        )
    return Row("Latency", panels)


def budget_remaining(slo: SloSpec, objective: Objective, links: Links) -> Sized:
    """Share of the error budget of the SLO period left, per endpoint, from the recorded ratios.

    The recorded ratios stop at a few days, so the period is read as sloth does: the mean of the
    shortest recorded ratio over back-to-back windows of the period. Every window weighs alike,
    whatever its traffic; a window without requests (0/0) is left out.
    """
    shortest = windows(slo)[0]
    ratio = f"{ratio_series(objective, shortest)}{{{ENDPOINT}}}"
    budget = f"(1 - {number(objective.objective)})"
    return stat(
        f"Error budget left: {objective.name}",
        f"Share of the {percent(1 - objective.objective)} error budget of the "
        f"{percent(objective.objective)} {objective.name} objective still unspent over the "
        f"last {slo.period}, per endpoint: 1 minus the mean of the recorded {shortest} error "
        f"ratios over the period, divided by the budget. Below zero, the objective is broken.",
        "percentunit",
        [
            Query(
                f"1 - (\n  avg_over_time(({ratio} >= 0)[{slo.period}:{shortest}])\n  /\n"
                f"  {budget}\n)",
                "{{endpoint}}",
                instant=True,
            )
        ],
        width=6,
        height=8,
        thresholds=BUDGET_STEPS,
        text_mode="value_and_name",
        links=links,
    )


def burn_rate(slo: SloSpec, objective: Objective, links: Links) -> Sized:
    """The recorded error ratio over each long window of the burn alerts, as budget multiples."""
    longs = sorted({p.long for b in slo.burn_alerts for p in b.windows}, key=duration_seconds)
    budget = f"(1 - {number(objective.objective)})"
    factors = {
        p.factor: "red" if burn.severity == "critical" else "orange"
        # A factor two alerts share takes the colour of the critical one.
        for burn in sorted(slo.burn_alerts, key=lambda b: b.severity == "critical")
        for p in burn.windows
    }
    pairs = "; ".join(
        f"{burn.severity} at {number(p.factor)}x over {p.long} and {p.short}"
        for burn in slo.burn_alerts
        for p in burn.windows
    )
    return timeseries(
        f"Burn rate: {objective.name}",
        f"How fast each endpoint spends its {objective.name} error budget: the recorded error "
        f"ratio over the long window of each burn-alert pair divided by the budget "
        f"(1 = the whole budget in exactly {slo.period}). The dashed lines are the alert "
        f"factors ({pairs}); an alert also needs the pair's short window above its factor.",
        "none",
        [
            Query(
                f"{ratio_series(objective, w)}{{{ENDPOINT}}}\n/\n{budget}", f"{{{{endpoint}}}} {w}"
            )
            for w in longs
        ],
        width=18,
        thresholds=(("green", None), *((c, f) for f, c in sorted(factors.items()))),
        draw_thresholds=True,
        legend_calcs=("lastNotNull", "max"),
        links=links,
    )


def error_budgets(spec: AlertSpec, runbooks: Runbooks) -> Row:
    panels = []
    for objective in spec.slo.objectives:
        links = runbooks.slo(objective.name)
        panels += [
            budget_remaining(spec.slo, objective, links),
            burn_rate(spec.slo, objective, links),
        ]
    return Row("Error budgets (per endpoint, from the SLO recording rules)", panels)


def tenants(spec: AlertSpec, runbooks: Runbooks) -> Row:
    bucket = f"servewatch_request_duration_seconds_bucket{{{REQUESTS}}}"
    latency_slo = slo_of(spec, LatencySlo)
    latency_line = (
        (("green", None), ("red", latency_slo.threshold_seconds))
        if latency_slo
        else (("green", None),)
    )
    panels = [
        timeseries(
            "Request rate by tenant",
            "Business requests answered per second per tenant, all outcomes.",
            "reqps",
            [
                Query(
                    f"sum by (tenant) (rate(servewatch_requests_total{{{REQUESTS}}}[{RATE}]))",
                    "{{tenant}}",
                )
            ],
            stack=True,
        ),
        timeseries(
            "p99 latency by tenant",
            "99th percentile of the request duration per tenant"
            + (
                f"; the dashed line is the {latency_slo.threshold_seconds:g}s bound of the "
                "latency SLO."
                if latency_slo
                else "."
            ),
            "s",
            [
                Query(
                    f"histogram_quantile(0.99, sum by (tenant, le) (rate({bucket}[{RATE}])))",
                    "{{tenant}}",
                )
            ],
            thresholds=latency_line,
            draw_thresholds=latency_slo is not None,
            links=slo_links(spec, runbooks, LatencySlo),
        ),
        timeseries(
            "Errors by tenant and class",
            "Non-ok answers per second per tenant and error class.",
            "reqps",
            [
                Query(
                    "sum by (tenant, outcome) (rate(servewatch_requests_total"
                    f'{{{REQUESTS}, outcome!="ok"}}[{RATE}]))',
                    "{{tenant}} {{outcome}}",
                )
            ],
            stack=True,
            links=slo_links(spec, runbooks, AvailabilitySlo),
        ),
    ]
    availability = slo_of(spec, AvailabilitySlo)
    if isinstance(availability, AvailabilitySlo):
        errors, valid = availability_selectors(availability, REQUESTS)
        budget = 1 - availability.objective
        panels.append(
            timeseries(
                "Server-side error ratio by tenant",
                "Share of each tenant's requests that failed with a server-side error "
                f"({', '.join(availability.bad_outcomes)}); above the dashed line "
                f"({percent(budget)}, the budget of the {percent(availability.objective)} "
                "objective) the tenant's requests fail faster than the objective allows.",
                "percentunit",
                [Query(error_share(errors, valid, "tenant"), "{{tenant}}")],
                thresholds=(("green", None), ("red", budget)),
                draw_thresholds=True,
                links=slo_links(spec, runbooks, AvailabilitySlo),
            )
        )
    return Row("Tenants", panels)


def capacity() -> Row:
    batch = "servewatch_batch_size"
    return Row(
        "Capacity",
        [
            timeseries(
                "In-flight requests",
                "Business requests being processed right now, per endpoint.",
                "short",
                [
                    Query(
                        f"sum by (endpoint) (servewatch_in_flight_requests{{{ENDPOINT}}})",
                        "{{endpoint}}",
                    )
                ],
                width=6,
            ),
            timeseries(
                "Queue depth",
                "Items waiting for an inference batch, per model.",
                "short",
                [
                    Query(
                        'sum by (model_name) (servewatch_queue_depth{model_name=~"$model"})',
                        "{{model_name}}",
                    )
                ],
                width=6,
            ),
            timeseries(
                "Batch size",
                "Mean and 90th percentile of the items per inference batch, per model.",
                "short",
                [
                    Query(
                        f"sum by (model_name) (rate({batch}_sum{{{MODEL}}}[{RATE}]))\n"
                        "/\n"
                        f"sum by (model_name) (rate({batch}_count{{{MODEL}}}[{RATE}]))",
                        "mean {{model_name}}",
                    ),
                    Query(
                        "histogram_quantile(0.9, sum by (model_name, le) "
                        f'(rate({batch}_bucket{{model_name=~"$model"}}[{RATE}])))',
                        "p90 {{model_name}}",
                    ),
                ],
                width=6,
            ),
            timeseries(
                "Busy workers",
                "Seconds per second the workers spent handling requests, per endpoint: the "
                "average number of busy workers. Divide by the worker count for utilization.",
                "short",
                [
                    Query(
                        "sum by (endpoint) (rate(servewatch_worker_busy_seconds_total"
                        f"{{{ENDPOINT}}}[{RATE}]))",
                        "{{endpoint}}",
                    )
                ],
                width=6,
                stack=True,
            ),
        ],
    )


def prediction_log(spec: AlertSpec, runbooks: Runbooks) -> Row:
    records = "servewatch_prediction_log_records_total"
    log = spec.prediction_log
    lag_alert = duration_seconds(log.replay_lag.lag)
    return Row(
        "Prediction log",
        [
            timeseries(
                "Prediction-log events",
                "Prediction records per second through the log pipeline: queued, written to "
                "the store, spilled to disk while the store is down, replayed, dropped.",
                "cps",
                [Query(f"sum by (event) (rate({records}[{RATE}]))", "{{event}}")],
                width=12,
                links=runbooks.links(
                    log.dropped.alert, log.spill_backlog.alert, log.replay_lag.alert
                ),
            ),
            stat(
                "Dropped records",
                "Prediction records lost over the selected range (queue full or spill failed). "
                "Anything above zero is data the monitors will never see.",
                "short",
                [Query(f'sum(increase({records}{{event="dropped"}}[$__range]))', instant=True)],
                thresholds=(("green", None), ("red", 1)),
                no_value="0",
                links=runbooks.links(log.dropped.alert),
            ),
            stat(
                "Spill backlog",
                "Prediction records waiting in spill files for the store to come back.",
                "short",
                [Query("sum(servewatch_prediction_log_spill_backlog)", instant=True)],
                thresholds=(("green", None), ("orange", 1)),
                no_value="0",
                links=runbooks.links(log.spill_backlog.alert),
            ),
            stat(
                "Replay lag",
                f"Age of the oldest record still waiting in a spill file (0 when none); red from "
                f"the {log.replay_lag.lag} of the replay-lag alert.",
                "s",
                [Query("max(servewatch_prediction_log_replay_lag_seconds)", instant=True)],
                thresholds=(
                    ("green", None),
                    ("orange", min(60, lag_alert)),
                    ("red", lag_alert),
                ),
                no_value="0",
                links=runbooks.links(log.replay_lag.alert),
            ),
            stat(
                "Loaded models",
                "Model versions loaded by the service and the ONNX Runtime execution provider "
                "really in use.",
                "none",
                [
                    Query(
                        "sum by (model_name, model_version, provider) "
                        '(servewatch_model_info{model_name=~"$model"})',
                        "{{model_name}} {{model_version}} ({{provider}})",
                        instant=True,
                    )
                ],
                width=6,
                text_mode="name",
            ),
        ],
    )


def serving_rows(spec: AlertSpec, runbooks: Runbooks) -> list[Row]:
    return [
        traffic(spec, runbooks),
        latency(spec, runbooks),
        error_budgets(spec, runbooks),
        tenants(spec, runbooks),
        capacity(),
        prediction_log(spec, runbooks),
    ]
