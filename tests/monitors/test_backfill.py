"""The backfill's plan (each monitor's scheduled windows within a span, grouped per window)
and its default source on the store."""

from datetime import UTC, datetime, timedelta

from core.config import AppConfig, MonitorSchedule, MonitorsConfig
from core.contracts import MONITOR_NAMES
from core.timeutil import Window
from monitors.aggregate_source import SqlAggregates
from monitors.backfill import backfill, plan
from monitors.baselines import BaselineStore
from storage import rollups
from tests.monitors import traffic

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


def test_a_sql_backfill_reads_the_rollups_and_gives_the_raw_rows_results(store_engine):
    """`--engine sql` follows `monitors.source`: the rollups (folded first) by default."""
    traffic.register_baseline(store_engine)
    traffic.load(store_engine, traffic.window_traffic(), traffic.previous_traffic())
    hourly = MonitorSchedule(every_seconds=1800, window_seconds=3600)
    config = _config(**dict.fromkeys(MONITOR_NAMES, hourly))
    runs = plan(Window(traffic.PREVIOUS[0], traffic.WINDOW[1]), config)

    def results(source=None):
        store = BaselineStore(store_engine, registry=lambda model, version: None)
        outcomes = backfill(store_engine, runs, config, source=source, baselines=store)
        return {(o.window, r.key): _close(r.to_json()) for o in outcomes for r in o.results}

    from_raw = results(SqlAggregates(store_engine))
    assert {key[1][0] for key in from_raw} == set(MONITOR_NAMES)
    assert rollups.newest_pending(store_engine) is not None  # raw rows: nothing folded
    assert results() == from_raw
    assert rollups.newest_pending(store_engine) is None  # the default folded and read rollups


def _close(value):
    """Floats rounded to 1e-9 (sums added in another order differ in their last bits)."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _close(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_close(v) for v in value]
    return value
