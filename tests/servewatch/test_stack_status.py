"""The local stack's live view: parsing the components' answers and rendering them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from rich.console import Console

from servewatch.stack_status import (
    Snapshot,
    delivered_alerts,
    p99_seconds,
    parse_alerts,
    parse_service_metrics,
    parse_verdicts,
    render_status,
    render_summary,
    request_rate,
)


def service_exposition(latencies: list[float], errors: int) -> str:
    registry = CollectorRegistry()
    requests = Counter("servewatch_requests", "", ["tenant", "outcome"], registry=registry)
    duration = Histogram(
        "servewatch_request_duration_seconds",
        "",
        ["tenant"],
        buckets=(0.01, 0.05, 0.1, 0.5),
        registry=registry,
    )
    for index, seconds in enumerate(latencies):
        tenant = "acme" if index % 2 else "globex"
        requests.labels(tenant, "ok").inc()
        duration.labels(tenant).observe(seconds)
    requests.labels("acme", "model_error").inc(errors)
    return generate_latest(registry).decode()


def test_traffic_is_summed_over_labels_and_p99_read_from_the_buckets():
    before = Snapshot(at=0.0, **parse_service_metrics(service_exposition([0.005] * 50, 0)))
    # 100 more requests in 10 s: 98 fast, 2 in the 0.1-0.5 s bucket.
    after_latencies = [0.005] * 50 + [0.005] * 98 + [0.3, 0.3]
    after = Snapshot(at=10.0, **parse_service_metrics(service_exposition(after_latencies, 3)))
    assert after.answered == 153
    assert after.errors == 3
    assert request_rate(after, before) == pytest.approx(10.3)
    # The 99th of 100 new requests is the first slow one: inside (0.1, 0.5].
    assert 0.1 < p99_seconds(after, before) <= 0.5
    assert p99_seconds(before, None) == pytest.approx(0.0099)  # interpolated in (0, 0.01]
    assert request_rate(after, None) is None


def monitors_exposition(rows: list[tuple[str, str, str, float, int]]) -> str:
    registry = CollectorRegistry()
    labels = ["monitor", "metric", "model_name", "model_version", "tenant"]
    value = Gauge("servewatch_monitor_value", "", labels, registry=registry)
    status = Gauge("servewatch_monitor_status", "", labels, registry=registry)
    for monitor, metric, tenant, number, code in rows:
        value.labels(monitor, metric, "ticket_classifier", "v1", tenant).set(number)
        status.labels(monitor, metric, "ticket_classifier", "v1", tenant).set(code)
    return generate_latest(registry).decode()


def test_each_key_shows_its_worst_metric():
    text = monitors_exposition(
        [
            ("class_shift", "psi", "globex", 0.41, 2),
            ("class_shift", "js_distance", "globex", 0.12, 1),
            ("class_shift", "psi", "acme", 0.01, 0),
            ("confidence_drift", "psi", "acme", 0.0, -1),
        ]
    )
    verdicts = {(v.monitor, v.tenant): v for v in parse_verdicts(text)}
    assert set(verdicts) == {
        ("class_shift", "globex"),
        ("class_shift", "acme"),
        ("confidence_drift", "acme"),
    }
    assert (verdicts["class_shift", "globex"].status, verdicts["class_shift", "globex"].metric) == (
        "alert",
        "psi",
    )
    assert verdicts["class_shift", "acme"].status == "ok"
    assert verdicts["confidence_drift", "acme"].status == "insufficient_data"


def test_only_firing_alerts_are_shown_critical_first():
    payload = {
        "status": "success",
        "data": {
            "alerts": [
                {"labels": {"alertname": "ServewatchClassShift", "severity": "warning",
                            "tenant": "globex"},
                 "annotations": {"summary": "class mix shifted"}, "state": "firing"},
                {"labels": {"alertname": "ServewatchHighErrorBurn", "severity": "critical"},
                 "annotations": {}, "state": "firing"},
                {"labels": {"alertname": "ServewatchTrafficStopped", "severity": "warning"},
                 "annotations": {}, "state": "pending"},
            ]
        },
    }  # fmt: skip
    alerts = parse_alerts(payload)
    assert [a.name for a in alerts] == ["ServewatchHighErrorBurn", "ServewatchClassShift"]
    assert alerts[1].labels == {"tenant": "globex"}
    assert alerts[1].summary == "class mix shifted"


def test_the_view_names_verdicts_and_alerts():
    snapshot = Snapshot(
        at=42.0,
        answered=10,
        errors=1,
        verdicts=parse_verdicts(monitors_exposition([("class_shift", "psi", "globex", 0.41, 2)])),
        alerts=parse_alerts(
            {
                "data": {
                    "alerts": [{"labels": {"alertname": "ServewatchClassShift"}, "state": "firing"}]
                }
            }
        ),
        notifications=2,
    )
    console = Console(record=True, width=160)
    console.print(render_status(snapshot, None, "servewatch stack"))
    shown = console.export_text()
    for expected in (
        "t+42s",
        "answered 10",
        "globex",
        "alert",
        "0.410",
        "ServewatchClassShift",
        "2 notifications",
    ):
        assert expected in shown


def _notification(received_at: str, status: str, tenant: str) -> dict:
    alert = {
        "status": status,
        "labels": {"alertname": "ServewatchClassShift", "tenant": tenant, "metric": "psi"},
        "annotations": {"runbook_url": "http://r/runbooks#x", "report_url": f"http://r/{tenant}"},
    }
    return {"received_at": received_at, "receiver": "ticket", "payload": {"alerts": [alert]}}


def test_the_summary_names_each_delivered_alert_in_its_latest_state(tmp_path):
    notifications = [
        _notification("2026-12-02T08:00:00Z", "firing", "globex"),
        _notification("2026-12-02T08:01:00Z", "firing", "acme"),
        _notification("2026-12-02T08:02:00Z", "resolved", "globex"),
    ]
    delivered = delivered_alerts(notifications)
    assert [(a.labels["tenant"], a.status) for a in delivered] == [
        ("acme", "firing"),
        ("globex", "resolved"),
    ]
    final = Snapshot(at=200.0, answered=50, errors=0, log_records={"written": 70, "dropped": 0})
    console = Console(record=True, width=200)
    console.print(
        render_summary(final, 70, notifications, tmp_path, {"monitors": "http://127.0.0.1:9101"})
    )
    shown = console.export_text()
    for expected in ("answered 50", "stored: 70", "written 70", "http://r/acme", "resolved"):
        assert expected in shown
    assert "http://127.0.0.1:9101/reports" in shown
    console = Console(record=True, width=200)
    console.print(render_summary(final, None, None, tmp_path, {}))
    assert "the alert sink did not answer" in console.export_text()
