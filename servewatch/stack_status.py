"""What the local stack shows while it runs and when it stops: a snapshot of the service's
traffic, the monitors' verdicts and the alerts, read from the components' own endpoints.

`read_snapshot` does the I/O (one GET per component, every failure tolerated: a component that
is starting or gone shows as unknown); `Snapshot` and the `render_*` functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from core.contracts import STATUS_CODES

_STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
_STATUS_STYLE = {"ok": "green", "warn": "yellow", "alert": "bold red", "insufficient_data": "dim"}
_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


@dataclass(frozen=True)
class Verdict:
    """The worst status a monitor gives one model version and tenant, with its metric."""

    monitor: str
    model_name: str
    model_version: str
    tenant: str
    status: str
    metric: str
    value: float | None


@dataclass(frozen=True)
class FiringAlert:
    name: str
    severity: str
    labels: Mapping[str, str]
    summary: str


@dataclass(frozen=True)
class Snapshot:
    """Counters and verdicts at one moment (`at`: seconds since the stack started)."""

    at: float
    answered: float | None = None  # business requests answered (all outcomes)
    errors: float | None = None  # of which not `ok`
    latency_buckets: Mapping[float, float] = field(default_factory=dict)  # le -> count
    verdicts: tuple[Verdict, ...] = ()
    alerts: tuple[FiringAlert, ...] = ()
    notifications: int | None = None  # received by the built-in alert sink
    log_records: Mapping[str, float] = field(default_factory=dict)  # prediction log, by event


def request_rate(current: Snapshot, previous: Snapshot | None) -> float | None:
    """Requests per second between two snapshots."""
    if previous is None or current.answered is None or previous.answered is None:
        return None
    elapsed = current.at - previous.at
    return (current.answered - previous.answered) / elapsed if elapsed > 0 else None


def p99_seconds(current: Snapshot, previous: Snapshot | None) -> float | None:
    """The 99th percentile latency between two snapshots, from the histogram's buckets (the
    upper bound of the bucket it falls in, as `histogram_quantile` would interpolate it)."""
    before = previous.latency_buckets if previous is not None else {}
    counts = sorted(
        (le, count - before.get(le, 0.0)) for le, count in current.latency_buckets.items()
    )
    if not counts or counts[-1][1] <= 0:
        return None
    rank = 0.99 * counts[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in counts:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_le + (le - lower_le) * share
        lower_le, lower_count = le, count
    return None


def parse_service_metrics(text: str) -> dict[str, Any]:
    """Answered, errors and the latency buckets summed over every label of the exposition."""
    answered = errors = 0.0
    buckets: dict[float, float] = {}
    records: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "servewatch_prediction_log_records_total":
                event = sample.labels.get("event", "")
                records[event] = records.get(event, 0.0) + sample.value
            elif sample.name == "servewatch_requests_total":
                answered += sample.value
                if sample.labels.get("outcome") != "ok":
                    errors += sample.value
            elif sample.name == "servewatch_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return {
        "answered": answered,
        "errors": errors,
        "latency_buckets": buckets,
        "log_records": records,
    }


def parse_verdicts(text: str) -> tuple[Verdict, ...]:
    """The worst metric status of each monitor, model version and tenant."""
    values: dict[tuple[str, ...], float] = {}
    statuses: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in ("servewatch_monitor_status", "servewatch_monitor_value"):
                continue
            labels = sample.labels
            key = tuple(
                labels.get(k, "")
                for k in ("monitor", "model_name", "model_version", "tenant", "metric")
            )
            target = statuses if sample.name == "servewatch_monitor_status" else values
            target[key] = sample.value
    worst: dict[tuple[str, ...], Verdict] = {}
    for key, code in statuses.items():
        name = _STATUS_NAMES.get(int(code), "insufficient_data")
        value = values.get(key)
        monitor, model_name, model_version, tenant, metric = key
        verdict = Verdict(monitor, model_name, model_version, tenant, name, metric, value)
        group = key[:4]
        if group not in worst or _rank(verdict.status) > _rank(worst[group].status):
            worst[group] = verdict
    return tuple(sorted(worst.values(), key=lambda v: (v.monitor, v.model_name, v.tenant)))


def _rank(status: str) -> int:
    return STATUS_CODES.get(status, -1)


def parse_alerts(payload: Mapping[str, Any]) -> tuple[FiringAlert, ...]:
    """Firing alerts from Prometheus's `/api/v1/alerts` answer."""
    alerts = []
    for alert in payload.get("data", {}).get("alerts", []):
        if alert.get("state") != "firing":
            continue
        labels = dict(alert.get("labels", {}))
        alerts.append(
            FiringAlert(
                name=labels.pop("alertname", "?"),
                severity=labels.pop("severity", ""),
                labels=labels,
                summary=str(alert.get("annotations", {}).get("summary", "")),
            )
        )
    return tuple(sorted(alerts, key=lambda a: (a.severity != "critical", a.name)))


def read_snapshot(at: float, urls: Mapping[str, str], timeout: float = 2.0) -> Snapshot:
    """A snapshot from the components at `urls` (service, monitors, prometheus, alert_sink)."""
    service = _get_text(urls.get("service"), "/metrics", timeout)
    monitors = _get_text(urls.get("monitors"), "/metrics", timeout)
    alerts = _get_json(urls.get("prometheus"), "/api/v1/alerts", timeout)
    sink = _get_json(urls.get("alert_sink"), "/notifications", timeout)
    traffic = parse_service_metrics(service) if service is not None else {}
    return Snapshot(
        at=at,
        answered=traffic.get("answered"),
        errors=traffic.get("errors"),
        latency_buckets=traffic.get("latency_buckets", {}),
        log_records=traffic.get("log_records", {}),
        verdicts=parse_verdicts(monitors) if monitors is not None else (),
        alerts=parse_alerts(alerts) if isinstance(alerts, Mapping) else (),
        notifications=_notification_count(sink),
    )


def _notification_count(payload: Any) -> int | None:
    if isinstance(payload, Mapping):
        payload = payload.get("notifications")
    return len(payload) if isinstance(payload, list) else None


def _get_text(base: str | None, path: str, timeout: float) -> str | None:
    if base is None:
        return None
    try:
        response = httpx.get(base + path, timeout=timeout)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def _get_json(base: str | None, path: str, timeout: float) -> Any:
    text = _get_text(base, path, timeout)
    if text is None:
        return None
    try:
        return httpx.Response(200, text=text).json()
    except ValueError:
        return None


def render_status(current: Snapshot, previous: Snapshot | None, title: str) -> Group:
    """The live view: traffic line, verdicts table, firing alerts."""
    return Group(
        Text(title, style="bold"),
        _traffic_line(current, previous),
        verdict_table(current.verdicts),
        alert_table(current.alerts, current.notifications),
    )


def _traffic_line(current: Snapshot, previous: Snapshot | None) -> Text:
    rate = request_rate(current, previous)
    p99 = p99_seconds(current, previous)
    parts = [
        f"t+{current.at:.0f}s",
        f"answered {_number(current.answered)}",
        f"errors {_number(current.errors)}",
        f"rate {'-' if rate is None else f'{rate:.1f}/s'}",
        f"p99 {'-' if p99 is None else f'{p99 * 1000:.0f} ms'}",
    ]
    return Text("  ".join(parts))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def verdict_table(verdicts: Sequence[Verdict], title: str = "monitor verdicts") -> Table:
    """The judged keys, worst first; keys with too few predictions are counted in the title."""
    judged = [v for v in verdicts if v.status != "insufficient_data"]
    thin = len(verdicts) - len(judged)
    caption = f"{title} (worst metric per key; {thin} more with too few predictions to judge)"
    table = Table(title=caption, title_justify="left")
    for column in ("monitor", "model", "version", "tenant", "status", "metric", "value"):
        table.add_column(column)
    for v in sorted(judged, key=lambda v: -_rank(v.status)):
        value = "-" if v.value is None or math.isnan(v.value) else f"{v.value:.3f}"
        status = Text(v.status, style=_STATUS_STYLE.get(v.status, ""))
        version = v.model_version[:8]
        table.add_row(v.monitor, v.model_name, version, v.tenant, status, v.metric, value)
    return table


def alert_table(alerts: Iterable[FiringAlert], notifications: int | None) -> Table:
    received = "" if notifications is None else f"; {notifications} notifications at the sink"
    table = Table(title=f"alerts firing{received}", title_justify="left")
    for column in ("alert", "severity", "labels", "summary"):
        table.add_column(column)
    for alert in alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        severity = Text(alert.severity, style=_SEVERITY_STYLE.get(alert.severity, ""))
        table.add_row(alert.name, severity, labels, alert.summary)
    return table


@dataclass(frozen=True)
class DeliveredAlert:
    """An alert as the sink last received it: its state and the links it carried."""

    name: str
    status: str
    labels: Mapping[str, str]
    runbook_url: str
    report_url: str
    received_at: str


def read_notifications(base: str | None, timeout: float = 2.0) -> list[Mapping[str, Any]] | None:
    """What the alert sink at `base` recorded (None when it does not answer)."""
    payload = _get_json(base, "/notifications", timeout)
    return payload if isinstance(payload, list) else None


def delivered_alerts(notifications: Iterable[Mapping[str, Any]]) -> tuple[DeliveredAlert, ...]:
    """Each alert the sink received (by name and labels), in its latest state."""
    latest: dict[tuple[str, ...], DeliveredAlert] = {}
    for notification in notifications:
        for alert in notification.get("payload", {}).get("alerts", []):
            labels = dict(alert.get("labels", {}))
            name = labels.pop("alertname", "?")
            annotations = alert.get("annotations", {})
            key = (name, *sorted(f"{k}={v}" for k, v in labels.items()))
            latest[key] = DeliveredAlert(
                name,
                str(alert.get("status", "")),
                labels,
                str(annotations.get("runbook_url", "")),
                str(annotations.get("report_url", "")),
                str(notification.get("received_at", "")),
            )
    return tuple(sorted(latest.values(), key=lambda a: (a.received_at, a.name)))


def render_summary(
    final: Snapshot,
    stored: int | None,
    notifications: Iterable[Mapping[str, Any]] | None,
    reports_dir: Path,
    urls: Mapping[str, str],
) -> Group:
    """What the run amounted to: answered and stored, verdicts, alerts delivered, reports."""
    records = final.log_records
    log_line = ", ".join(f"{event} {count:.0f}" for event, count in sorted(records.items()))
    lines: list[RenderableType] = [
        Text("summary", style="bold"),
        Text(
            f"answered {_number(final.answered)} requests ({_number(final.errors)} errors); "
            f"prediction rows stored: {'-' if stored is None else stored} (one per bulk item)"
        ),
        Text(f"prediction log records: {log_line or '-'}"),
        verdict_table([v for v in final.verdicts if v.status != "ok"], "verdicts not ok"),
        _delivered_table(delivered_alerts(notifications or [])),
        Text(
            f"reports: {reports_dir}"
            + (f" (served at {urls['monitors']}/reports)" if "monitors" in urls else "")
        ),
    ]
    if notifications is None:
        lines.insert(4, Text("the alert sink did not answer: no delivered alerts to show"))
    return Group(*lines)


def _delivered_table(alerts: Iterable[DeliveredAlert]) -> Table:
    table = Table(title="alerts delivered to the sink (latest state)", title_justify="left")
    for column in ("alert", "state", "model", "tenant", "metric", "runbook", "report"):
        table.add_column(column, overflow="fold")
    for alert in alerts:
        labels = alert.labels
        model = f"{labels.get('model_name', '')} {labels.get('model_version', '')[:8]}".strip()
        table.add_row(
            alert.name,
            alert.status,
            model,
            labels.get("tenant", ""),
            labels.get("metric", ""),
            alert.runbook_url,
            alert.report_url,
        )
    return table
