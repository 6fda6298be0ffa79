"""The demo pace: the user's config and alerting spec on a clock a newcomer can watch."""

from __future__ import annotations

from pathlib import Path

from alerts.spec import load_spec
from core.config import load_app_config
from core.contracts import MONITOR_NAMES
from servewatch.demo_profile import (
    DEMO_ALERT_FOR,
    DEMO_SCHEDULE,
    DemoDrift,
    demo_alert_spec,
    demo_app_config,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "servewatch.yaml"


def test_every_monitor_runs_on_short_windows_and_nothing_else_changes():
    config = load_app_config(EXAMPLE)
    demo = demo_app_config(config)
    assert set(demo.monitors.schedules) == set(MONITOR_NAMES)
    assert demo.monitors.schedules["class_shift"] == DEMO_SCHEDULE
    assert demo.monitors.schedules["cost"].window_seconds == 60
    assert demo.monitors.thresholds == config.monitors.thresholds
    assert demo.monitors.false_alarm_rate == config.monitors.false_alarm_rate
    assert demo.tenants == config.tenants
    assert demo.alerting == config.alerting
    assert config.monitors.schedules["class_shift"].window_seconds == 3600  # not mutated


def test_drift_and_traffic_alerts_hold_briefly_and_burn_alerts_keep_their_windows():
    spec = load_spec()
    demo = demo_alert_spec(spec)
    assert {alert.for_ for alert in demo.drift} == {DEMO_ALERT_FOR}
    assert demo.traffic.for_ == DEMO_ALERT_FOR
    assert demo.alertmanager.group_wait == "10s"
    assert demo.slo == spec.slo
    assert demo.output_schema == spec.output_schema
    assert {alert.for_ for alert in spec.drift} != {DEMO_ALERT_FOR}


def test_the_injected_drift_is_a_traffic_scenario():
    drift = DemoDrift(at_s=45, tenant="acme")
    assert drift.traffic_scenario() == "class_shift@45:acme"
    assert "acme" in drift.describe()
