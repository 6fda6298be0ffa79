"""The Serving dashboard: traffic, latency, errors, capacity and the prediction-log pipeline."""

from __future__ import annotations

from alerts.promql import le, one_of
from alerts.slo import percent
from alerts.spec import AlertSpec, AvailabilitySlo, LatencySlo
from dashboards.layout import Row
from dashboards.panels import Query, piechart, stat, timeseries

RATE = "$__rate_interval"
MODEL = 'model_name=~"$model"'
REQUESTS = f'{MODEL}, tenant=~"$tenant"'


def _slo(spec: AlertSpec, kind: type) -> AvailabilitySlo | LatencySlo | None:
    return next((o for o in spec.slo.objectives if isinstance(o, kind)), None)


def _good_share(errors: str, valid: str) -> str:
    """1 - errors/valid per endpoint; an endpoint without any error reads 1, not "no data"."""
    bad = f"sum by (endpoint) (rate({errors}[{RATE}]))"
    total = f"sum by (endpoint) (rate({valid}[{RATE}]))"
    return f"1 - (\n  ({bad} or 0 * {total})\n  /\n  {total}\n)"


def traffic(spec: AlertSpec) -> Row:
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
        ),
    ]
    availability = _slo(spec, AvailabilitySlo)
    if isinstance(availability, AvailabilitySlo):
        bad = one_of(availability.bad_outcomes)
        counted = one_of(availability.good_outcomes + availability.bad_outcomes)
        errors = f'servewatch_requests_total{{{REQUESTS}, outcome=~"{bad}"}}'
        valid = f'servewatch_requests_total{{{REQUESTS}, outcome=~"{counted}"}}'
        panels.append(
            timeseries(
                "Availability (SLI) by endpoint",
                "Share of requests answered without a server-side error "
                f"({', '.join(availability.bad_outcomes)}); the dashed line is the "
                f"{percent(availability.objective)} objective of alerts/spec.yaml.",
                "percentunit",
                [Query(_good_share(errors, valid), "{{endpoint}}")],
                width=24,
                thresholds=(("red", None), ("green", availability.objective)),
                draw_thresholds=True,
                max_value=1,
            )
        )
    return Row("Traffic and errors", panels)


def latency(spec: AlertSpec) -> Row:
    bucket = f"servewatch_request_duration_seconds_bucket{{{REQUESTS}}}"
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
    slo = _slo(spec, LatencySlo)
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
            )
        )
    return Row("Latency", panels)


def capacity() -> Row:
    batch = "servewatch_batch_size"
    return Row(
        "Capacity",
        [
            timeseries(
                "In-flight requests",
                "Business requests being processed right now, per endpoint.",
                "short",
                [Query("sum by (endpoint) (servewatch_in_flight_requests)", "{{endpoint}}")],
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
                        f"sum by (endpoint) (rate(servewatch_worker_busy_seconds_total[{RATE}]))",
                        "{{endpoint}}",
                    )
                ],
                width=6,
                stack=True,
            ),
        ],
    )


def prediction_log() -> Row:
    records = "servewatch_prediction_log_records_total"
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
            ),
            stat(
                "Dropped records",
                "Prediction records lost over the selected range (queue full or spill failed). "
                "Anything above zero is data the monitors will never see.",
                "short",
                [Query(f'sum(increase({records}{{event="dropped"}}[$__range]))', instant=True)],
                thresholds=(("green", None), ("red", 1)),
                no_value="0",
            ),
            stat(
                "Spill backlog",
                "Prediction records waiting in spill files for the store to come back.",
                "short",
                [Query("sum(servewatch_prediction_log_spill_backlog)", instant=True)],
                thresholds=(("green", None), ("orange", 1)),
                no_value="0",
            ),
            stat(
                "Replay lag",
                "Age of the oldest record still waiting in a spill file (0 when none).",
                "s",
                [Query("max(servewatch_prediction_log_replay_lag_seconds)", instant=True)],
                thresholds=(("green", None), ("orange", 60), ("red", 900)),
                no_value="0",
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


def serving_rows(spec: AlertSpec) -> list[Row]:
    return [traffic(spec), latency(spec), capacity(), prediction_log()]
