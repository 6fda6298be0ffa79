"""The Model quality dashboard: confidence, classes, drift with thresholds, schema failures."""

from __future__ import annotations

from alerts.promql import le
from core.catalog import CONFIDENCE_BUCKETS
from core.config import MonitorsConfig, Threshold
from core.contracts import MONITOR_TABLE
from dashboards.layout import Row
from dashboards.links import Runbooks
from dashboards.panels import Links, Query, Sized, heatmap, sql_table, stat, timeseries
from dashboards.variables import VERSION

RATE = "$__rate_interval"
MODEL_VERSION = f'model_name=~"$model", model_version=~"${VERSION}"'
PREDICTIONS = f'{MODEL_VERSION}, tenant=~"$tenant"'
SHARES = {m.name for monitor in MONITOR_TABLE for m in monitor.metrics if m.share}
METRIC_MEANINGS = {m.name: m.meaning for monitor in MONITOR_TABLE for m in monitor.metrics}
STATUS_MAPPING = {
    "type": "value",
    "options": {
        "-1": {"text": "insufficient data", "color": "text", "index": 0},
        "0": {"text": "ok", "color": "green", "index": 1},
        "1": {"text": "warn", "color": "orange", "index": 2},
        "2": {"text": "alert", "color": "red", "index": 3},
    },
}


def predictions(cutoff: float) -> Row:
    confidence = "servewatch_prediction_confidence"
    classes = "servewatch_predicted_class_total"
    cutoff_bucket = max(b for b in CONFIDENCE_BUCKETS if b <= cutoff)
    low = f'{confidence}_bucket{{{PREDICTIONS}, le="{le(cutoff_bucket)}"}}'
    return Row(
        "Predictions",
        [
            heatmap(
                "Confidence distribution over time",
                "Predictions per confidence bucket (probability of the returned class) over "
                "time; mass sliding down means the model is less sure than it used to be.",
                "short",
                "percentunit",
                Query(
                    f"sum by (le) (increase({confidence}_bucket{{{PREDICTIONS}}}[{RATE}]))",
                    "{{le}}",
                    format="heatmap",
                ),
            ),
            timeseries(
                "Mean confidence by model version",
                "Average probability of the returned class per model and version.",
                "percentunit",
                [
                    Query(
                        "sum by (model_name, model_version) "
                        f"(rate({confidence}_sum{{{PREDICTIONS}}}[{RATE}]))\n/\n"
                        "sum by (model_name, model_version) "
                        f"(rate({confidence}_count{{{PREDICTIONS}}}[{RATE}]))",
                        "{{model_name}} {{model_version}}",
                    )
                ],
                width=6,
                max_value=1,
            ),
            timeseries(
                f"Share of predictions at or below {cutoff_bucket:g} confidence",
                "Share of predictions whose confidence falls in the buckets up to "
                f"{cutoff_bucket:g} (the monitors' low-confidence cutoff is {cutoff:g}).",
                "percentunit",
                [
                    Query(
                        "sum by (model_name, model_version) "
                        f"(rate({low}[{RATE}]))"
                        "\n/\n"
                        "sum by (model_name, model_version) "
                        f"(rate({confidence}_count{{{PREDICTIONS}}}[{RATE}]))",
                        "{{model_name}} {{model_version}}",
                    )
                ],
                width=6,
                max_value=1,
            ),
            timeseries(
                "Class shares over time",
                "Share of each predicted class among the predictions of its model.",
                "percentunit",
                [
                    Query(
                        "sum by (model_name, predicted_class) "
                        f"(rate({classes}{{{PREDICTIONS}}}[{RATE}]))\n"
                        "/ on (model_name) group_left\n"
                        f"sum by (model_name) (rate({classes}{{{PREDICTIONS}}}[{RATE}]))",
                        "{{model_name}} {{predicted_class}}",
                    )
                ],
                width=24,
                stack=True,
                max_value=1,
            ),
        ],
    )


def monitor_panel(monitor: str, metric: str, threshold: Threshold, links: Links = ()) -> Sized:
    """The latest value of one monitor metric per model, version and tenant, with thresholds."""
    meaning = METRIC_MEANINGS.get(metric, f"The {metric} metric of the {monitor} monitor")
    selector = f'monitor="{monitor}", metric="{metric}", {PREDICTIONS}'
    return timeseries(
        f"{monitor}: {metric}",
        f"{meaning}, per model, version and tenant ('*' = all). Dashed lines: warn at "
        f"{threshold.warn:g}, alert at {threshold.alert:g} (the app config the dashboards "
        "were built for).",
        "percentunit" if metric in SHARES else "none",
        [
            Query(
                "max by (model_name, model_version, tenant) "
                f"(servewatch_monitor_value{{{selector}}})",
                "{{model_name}} {{model_version}} · {{tenant}}",
            )
        ],
        width=8,
        thresholds=(("green", None), ("orange", threshold.warn), ("red", threshold.alert)),
        draw_thresholds=True,
        links=links,
    )


def drift(config: MonitorsConfig, runbooks: Runbooks) -> Row:
    selector = f"{{{PREDICTIONS}}}"
    status = stat(
        "Monitor status",
        "Worst latest status of each monitor metric over the selected models, versions and "
        "tenants.",
        "none",
        [
            Query(
                f"max by (monitor, metric) (servewatch_monitor_status{selector})",
                "{{monitor}} {{metric}}",
                instant=True,
            )
        ],
        width=24,
        thresholds=(("green", None),),
        mappings=[STATUS_MAPPING],
        text_mode="value_and_name",
        links=runbooks.drift(*config.thresholds),
    )
    panels = [status] + [
        monitor_panel(monitor, metric, threshold, runbooks.drift(monitor))
        for monitor, metrics in config.thresholds.items()
        for metric, threshold in metrics.items()
    ]
    return Row("Drift and shift monitors", panels)


def output_schema(runbooks: Runbooks) -> Row:
    return Row(
        "Output schema and monitor health",
        [
            timeseries(
                "Output-schema failures by reason",
                "Inference outputs per second that broke the output schema (non-finite, not "
                "summing to 1, unknown class), per model, version and reason.",
                "cps",
                [
                    Query(
                        "sum by (model_name, model_version, reason) "
                        f"(rate(servewatch_output_schema_failures_total{{{MODEL_VERSION}}}[{RATE}]))",
                        "{{model_name}} {{model_version}} {{reason}}",
                    )
                ],
                width=8,
                stack=True,
                links=runbooks.links(runbooks.spec.output_schema.alert),
            ),
            timeseries(
                "Predictions behind the monitor values",
                "How many predictions the latest value of each monitor was computed from; "
                "below the configured minimum a monitor reports insufficient data.",
                "short",
                [
                    Query(
                        "max by (monitor, model_name, model_version) "
                        f"(servewatch_monitor_sample_size{{{PREDICTIONS}}})",
                        "{{monitor}} {{model_name}} {{model_version}}",
                    )
                ],
                width=8,
            ),
            timeseries(
                "Time since the last successful monitor run",
                "Seconds since each monitor last completed a run; the staleness alert fires "
                "after several missed intervals.",
                "s",
                [
                    Query(
                        "time() - max by (monitor) "
                        "(servewatch_monitor_last_success_timestamp_seconds)",
                        "{{monitor}}",
                    )
                ],
                width=8,
                links=runbooks.links(runbooks.spec.monitor_staleness.alert),
            ),
            sql_table(
                "Latest monitor results (store)",
                "The newest rows of the monitor_results table in the selected range: value, "
                "threshold, status and the number of predictions behind each.",
                "SELECT window_end AS time, monitor, metric, model_name, model_version, tenant,\n"
                "       value, threshold, status, n\n"
                "FROM monitor_results\n"
                "WHERE $__timeFilter(window_end)\n"
                "ORDER BY window_end DESC, monitor, metric, model_name, tenant\n"
                "LIMIT 200",
            ),
        ],
    )


def model_quality_rows(config: MonitorsConfig, runbooks: Runbooks) -> list[Row]:
    return [
        predictions(config.low_confidence_cutoff),
        drift(config, runbooks),
        output_schema(runbooks),
    ]
