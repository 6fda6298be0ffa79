"""The exporter: catalog gauges from monitor rows, in a fresh registry per test."""

from datetime import UTC, datetime

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.catalog import MONITOR_METRICS, series_names
from core.config import AppConfig, MonitorSchedule, MonitorsConfig, TenantConfig
from monitors.exporter import MonitorExporter
from monitors.results import MonitorResult

T = datetime(2026, 11, 16, 10, tzinfo=UTC)
CONFIG = AppConfig(tenants={"acme": TenantConfig(weekly_budget_usd=3.0)})


def _row(tenant, value, status="ok", n=500, metric="psi"):
    return MonitorResult(
        "confidence_drift", "ticket_classifier", "v1", tenant, T, T, metric, value, 0.1, status, n
    )


def _labels(tenant, metric="psi"):
    return {
        "monitor": "confidence_drift",
        "metric": metric,
        "model_name": "ticket_classifier",
        "model_version": "v1",
        "tenant": tenant,
    }


@pytest.fixture
def registry():
    return CollectorRegistry()


def test_rows_become_value_status_and_sample_size(registry):
    exporter = MonitorExporter(registry, CONFIG)
    exporter.publish("confidence_drift", [_row("acme", 0.3, "alert"), _row("*", 0.05, n=900)])
    assert registry.get_sample_value("servewatch_monitor_value", _labels("acme")) == 0.3
    assert registry.get_sample_value("servewatch_monitor_status", _labels("acme")) == 2
    assert registry.get_sample_value("servewatch_monitor_sample_size", _labels("*")) == 900


def test_insufficient_data_has_a_status_but_no_value(registry):
    exporter = MonitorExporter(registry, CONFIG)
    exporter.publish("confidence_drift", [_row("acme", 0.3)])
    exporter.publish("confidence_drift", [_row("acme", None, "insufficient_data", n=12)])
    assert registry.get_sample_value("servewatch_monitor_status", _labels("acme")) == -1
    assert registry.get_sample_value("servewatch_monitor_value", _labels("acme")) is None


def test_series_of_vanished_groups_are_removed(registry):
    exporter = MonitorExporter(registry, CONFIG)
    exporter.publish("confidence_drift", [_row("acme", 0.3), _row("globex", 0.2)])
    exporter.publish("confidence_drift", [_row("acme", 0.1)])
    assert registry.get_sample_value("servewatch_monitor_status", _labels("globex")) is None
    assert registry.get_sample_value("servewatch_monitor_value", _labels("acme")) == 0.1


def test_costs_thresholds_budgets_and_runs(registry):
    exporter = MonitorExporter(registry, CONFIG)
    costs = pd.DataFrame(
        [("ticket_classifier", "v1", "acme", "classify_ticket", 2000, 1.5, 0.5, 0.1, 0.6)],
        columns=[
            "model_name", "model_version", "tenant", "endpoint", "n", "compute_seconds",
            "attributed_cost_usd", "idle_cost_usd", "total_cost_usd",
        ],
    )  # fmt: skip
    exporter.publish_costs(costs)
    exporter.publish_week_costs({"acme": 1.25})
    exporter.record_run("cost", True, 0.4, 1_700_000_000.0)
    exporter.record_run("cost", False, 0.1, 1_700_000_100.0)
    key = {"model_name": "ticket_classifier", "model_version": "v1"}
    cost = {**key, "tenant": "acme", "endpoint": "classify_ticket"}
    assert registry.get_sample_value("servewatch_cost_usd", {**cost, "kind": "idle"}) == 0.1
    assert registry.get_sample_value("servewatch_cost_per_1k_predictions_usd", key) == 0.25
    assert registry.get_sample_value("servewatch_tenant_week_cost_usd", {"tenant": "acme"}) == 1.25
    assert registry.get_sample_value("servewatch_tenant_weekly_budget_usd", {"tenant": "acme"}) == 3
    runs = "servewatch_monitor_runs_total"
    assert registry.get_sample_value(runs, {"monitor": "cost", "outcome": "failure"}) == 1
    last = "servewatch_monitor_last_success_timestamp_seconds"
    assert registry.get_sample_value(last, {"monitor": "cost"}) == 1_700_000_000.0
    exporter.publish_costs(costs.head(0))
    assert registry.get_sample_value("servewatch_cost_usd", {**cost, "kind": "idle"}) is None


def test_only_catalog_series_are_exposed(registry):
    exporter = MonitorExporter(registry, CONFIG)
    exporter.publish("confidence_drift", [_row("acme", 0.3)])
    exporter.record_run("confidence_drift", True, 0.2, 1.0)
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in generate_latest(registry).decode().splitlines()
        if line and not line.startswith("#")
    }
    allowed = series_names(MONITOR_METRICS) | {"servewatch_monitor_runs_created"}
    assert exposed <= allowed


def test_schedules_and_the_last_completed_run_of_each_monitor(registry):
    config = AppConfig(
        monitors=MonitorsConfig(schedules={"traffic": MonitorSchedule(every_seconds=900)})
    )
    exporter = MonitorExporter(registry, config)
    schedule = "servewatch_monitor_schedule_seconds"
    assert registry.get_sample_value(schedule, {"monitor": "traffic"}) == 900
    assert registry.get_sample_value(schedule, {"monitor": "class_shift"}) == 300
    last_run = "servewatch_monitor_last_run_timestamp_seconds"
    exporter.restore_last_run("traffic", 1_700_000_000.0)  # read back from the store at start
    assert registry.get_sample_value(last_run, {"monitor": "traffic"}) == 1_700_000_000.0
    exporter.record_run("traffic", False, 0.1, 1_700_000_600.0)
    assert registry.get_sample_value(last_run, {"monitor": "traffic"}) == 1_700_000_000.0
    exporter.record_run("traffic", True, 0.1, 1_700_000_900.0)
    assert registry.get_sample_value(last_run, {"monitor": "traffic"}) == 1_700_000_900.0
    exporter.restore_last_run("traffic", 1_700_000_000.0)  # never goes back
    assert registry.get_sample_value(last_run, {"monitor": "traffic"}) == 1_700_000_900.0
