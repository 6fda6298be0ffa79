"""The scheduler with an explicit clock: cadence, catch-up, restarts, failures and locks."""

import threading

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, text

from core.config import AppConfig, MonitorSchedule, MonitorsConfig, TenantConfig
from monitors.baselines import BaselineStore
from monitors.exporter import MonitorExporter
from monitors.scheduler import Scheduler
from storage.locks import monitor_lock
from storage.schema import monitor_results
from tests.monitors import traffic

EVERY, WINDOW = 600, 3600
SCHEDULES = {
    name: MonitorSchedule(every_seconds=EVERY, window_seconds=WINDOW)
    for name in ("confidence_drift", "class_shift", "schema_failures", "cost")
}
CONFIG = AppConfig(
    monitors=MonitorsConfig(schedules=SCHEDULES),
    tenants={"acme": TenantConfig(weekly_budget_usd=5.0)},
)
END = traffic.WINDOW[1].timestamp()  # the traffic hour ends on the cadence


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(store_engine):
    traffic.register_baseline(store_engine)
    traffic.load(store_engine, traffic.window_traffic())
    return store_engine


def _scheduler(engine, clock, registry=None):
    exporter = MonitorExporter(registry or CollectorRegistry(), CONFIG)
    baselines = BaselineStore(engine, registry=lambda name, version: None)
    return Scheduler(engine, CONFIG, exporter, clock=clock, baselines=baselines)


def _ends(runs, monitor):
    return [r.window.end.timestamp() - END for r in runs if r.monitor == monitor]


def _stored(engine):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(monitor_results)).scalar()


def test_first_tick_runs_the_latest_window_and_exports_it(engine):
    registry = CollectorRegistry()
    runs = _scheduler(engine, Clock(END + 5), registry).tick()
    assert {r.monitor for r in runs} == set(SCHEDULES)
    assert all(r.outcome == "success" and _ends(runs, r.monitor) == [0] for r in runs)
    labels = {
        "monitor": "confidence_drift",
        "metric": "psi",
        "model_name": "ticket_classifier",
        "model_version": "v1",
    }
    status = "servewatch_monitor_status"
    assert registry.get_sample_value(status, {**labels, "tenant": "globex"}) == 2
    assert registry.get_sample_value(status, {**labels, "tenant": "acme"}) == 0
    assert registry.get_sample_value(status, {**labels, "tenant": "initech"}) == -1
    value = "servewatch_monitor_value"
    assert registry.get_sample_value(value, {**labels, "tenant": "initech"}) is None
    assert registry.get_sample_value(
        "servewatch_monitor_last_success_timestamp_seconds", {"monitor": "cost"}
    ) == pytest.approx(END + 5)
    assert registry.get_sample_value("servewatch_tenant_week_cost_usd", {"tenant": "acme"}) > 0
    assert registry.get_sample_value("servewatch_tenant_weekly_budget_usd", {"tenant": "acme"}) == 5
    assert (
        registry.get_sample_value(
            "servewatch_monitor_threshold",
            {"monitor": "confidence_drift", "metric": "psi", "severity": "alert"},
        )
        == 0.25
    )


def test_nothing_runs_twice_and_missed_windows_are_caught_up_in_order(engine):
    clock = Clock(END + 5)
    scheduler = _scheduler(engine, clock)
    scheduler.tick()
    clock.now = END + 300
    assert scheduler.tick() == []
    clock.now = END + 3 * EVERY + 1
    runs = scheduler.tick()
    assert _ends(runs, "class_shift") == [EVERY, 2 * EVERY, 3 * EVERY]


def test_a_restarted_scheduler_remembers_completed_windows_from_the_store(engine):
    _scheduler(engine, Clock(END + 5)).tick()
    stored = _stored(engine)
    restarted = _scheduler(engine, Clock(END + EVERY + 5))
    runs = restarted.tick()
    assert _ends(runs, "schema_failures") == [EVERY]
    assert _stored(engine) > stored


def test_a_failing_run_is_counted_and_retried_at_the_next_tick(engine):
    registry = CollectorRegistry()
    clock = Clock(END + 5)
    scheduler = _scheduler(engine, clock, registry)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE monitor_results RENAME TO monitor_results_away"))
    try:
        failed = scheduler.tick()
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE monitor_results_away RENAME TO monitor_results"))
    assert failed
    assert all(r.outcome == "failure" for r in failed)
    failures = {"monitor": "cost", "outcome": "failure"}
    assert registry.get_sample_value("servewatch_monitor_runs_total", failures) == 1
    retried = scheduler.tick()
    assert retried
    assert all(r.outcome == "success" for r in retried)
    assert _ends(retried, "cost") == [0]


def test_a_monitor_locked_by_another_process_is_skipped(engine):
    scheduler = _scheduler(engine, Clock(END + 5))
    with monitor_lock(engine, "cost") as acquired:
        assert acquired
        runs = scheduler.tick()
    assert "cost" not in {r.monitor for r in runs}
    assert len(runs) == 3
    assert _ends(scheduler.tick(), "cost") == [0]


def test_serve_ticks_until_stopped(engine):
    scheduler = _scheduler(engine, Clock(END + 5))
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.serve, args=(stop, 0.01))
    thread.start()
    try:
        for _ in range(500):
            if _stored(engine):
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert _stored(engine) > 0


def test_the_weekly_finops_report_is_written_once_when_due(engine, tmp_path):
    scheduler = _scheduler(engine, Clock(END + 5))
    scheduler.finops_out_dir = tmp_path / "reports"
    runs = [r for r in scheduler.tick() if r.monitor == "finops"]
    # Monday of 2026-W47 (finops_weekday 1): the report of the week before is due.
    assert [(r.outcome, r.week) for r in runs] == [("success", "2026-W46")]
    assert (tmp_path / "reports" / "finops-2026-W46.html").exists()
    assert [r for r in scheduler.tick() if r.monitor == "finops"] == []
