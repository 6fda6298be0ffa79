"""The backfill's plan: each monitor's scheduled windows within a span, grouped per window."""

from datetime import UTC, datetime, timedelta

from core.config import AppConfig, MonitorSchedule, MonitorsConfig
from core.contracts import MONITOR_NAMES
from core.timeutil import Window
from monitors.backfill import plan

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def _config(**schedules: MonitorSchedule) -> AppConfig:
    return AppConfig(monitors=MonitorsConfig(schedules=schedules))


def test_monitors_sharing_a_window_run_together_in_catalog_order_oldest_window_first():
    hourly = MonitorSchedule(every_seconds=3600, window_seconds=3600)
    config = _config(
        traffic=hourly,
        confidence_drift=hourly,
        cost=MonitorSchedule(every_seconds=1800, window_seconds=1800),
    )
    runs = plan(
        Window(T0, T0 + timedelta(hours=2)), config, ["traffic", "cost", "confidence_drift"]
    )
    assert [(r.window.start.strftime("%H:%M"), r.window.end.strftime("%H:%M")) for r in runs] == [
        ("10:00", "10:30"),
        ("10:00", "11:00"),
        ("10:30", "11:00"),
        ("11:00", "11:30"),
        ("11:00", "12:00"),
        ("11:30", "12:00"),
    ]
    order = [m for m in MONITOR_NAMES if m in ("traffic", "confidence_drift")]
    assert [r.monitors for r in runs] == [("cost",), tuple(order), ("cost",)] * 2


def test_the_default_schedule_gives_every_five_minute_end_whose_hour_fits():
    runs = plan(Window(T0, T0 + timedelta(hours=2)), AppConfig())
    assert len(runs) == 13
    assert all(r.monitors == MONITOR_NAMES for r in runs)
    assert runs[0].window == Window(T0, T0 + timedelta(hours=1))
    assert runs[-1].window.end == T0 + timedelta(hours=2)


def test_a_span_shorter_than_a_window_plans_nothing():
    assert plan(Window(T0, T0 + timedelta(minutes=59)), AppConfig()) == []
