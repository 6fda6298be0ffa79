"""The scheduler with an explicit clock: cadence, catch-up, restarts, failures and locks."""

import contextlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import func, select, text

from core.config import (
    AppConfig,
    MonitorSchedule,
    MonitorsConfig,
    RetentionConfig,
    TenantConfig,
    TrafficConfig,
)
from core.contracts import MONITOR_NAMES
from core.reports import LATEST, report_path, window_file
from core.timeutil import Window
from monitors.baselines import BaselineStore
from monitors.exporter import MonitorExporter
from monitors.runner import run_monitors, store_results
from monitors.scheduler import (
    RESTORE_WINDOWS,
    RETENTION,
    RETENTION_BUDGET_S,
    RETENTION_EVERY_S,
    Scheduler,
    WindowRun,
)
from storage.audit import verify
from storage.locks import monitor_lock
from storage.partitions import DAYS_AHEAD, partitions
from storage.schema import monitor_results, prediction_rollups, predictions
from tests.monitors import traffic

EVERY, WINDOW = 600, 3600
SCHEDULES = {
    name: MonitorSchedule(every_seconds=EVERY, window_seconds=WINDOW) for name in MONITOR_NAMES
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
    assert len(runs) == len(MONITOR_NAMES) - 1
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


def _retention_runs(runs):
    return [r for r in runs if r.monitor == RETENTION]


def test_without_a_retention_nothing_is_pruned(engine):
    assert _retention_runs(_scheduler(engine, Clock(END + 5)).tick()) == []


def test_the_configured_retention_prunes_at_the_first_tick_then_once_a_day(engine):
    config = CONFIG.model_copy(
        update={"retention": RetentionConfig(predictions_days=30, monitor_results_days=30)}
    )
    clock = Clock(END + 5)
    exporter = MonitorExporter(CollectorRegistry(), config)
    baselines = BaselineStore(engine, registry=lambda name, version: None)
    scheduler = Scheduler(engine, config, exporter, clock=clock, baselines=baselines)

    first = scheduler.tick()  # the traffic hour's windows run; nothing is 30 days old yet
    assert _retention_runs(first) == [WindowRun(RETENTION, None, "success", rows=0)]
    results = _stored(engine)
    assert results > 0
    clock.now += RETENTION_EVERY_S - 1
    scheduler.monitors = ()  # the monitors' catch-up is not what this test is about
    assert _retention_runs(scheduler.tick()) == []

    clock.now += 30 * 86_400
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(predictions)).scalar()
    assert _retention_runs(scheduler.tick()) == [
        WindowRun(RETENTION, None, "success", rows=stored + results)
    ]
    assert _stored(engine) == 0
    assert verify(engine).ok


class RushingClock(Clock):
    """A clock on which every reading is a prune's whole budget after the one before."""

    def __call__(self) -> float:
        self.now += RETENTION_BUDGET_S
        return self.now


def test_a_prune_out_of_time_goes_on_at_the_next_tick(engine):
    config = CONFIG.model_copy(update={"retention": RetentionConfig(predictions_days=30)})
    clock = RushingClock(END + 40 * 86_400)
    exporter = MonitorExporter(CollectorRegistry(), config)
    baselines = BaselineStore(engine, registry=lambda name, version: None)
    scheduler = Scheduler(engine, config, exporter, clock=clock, baselines=baselines, monitors=())
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(predictions)).scalar()

    assert _retention_runs(scheduler.tick()) == [WindowRun(RETENTION, None, "success", rows=0)]
    scheduler.clock = Clock(clock.now)  # a tick with time to spare

    assert _retention_runs(scheduler.tick()) == [WindowRun(RETENTION, None, "success", rows=stored)]
    assert verify(engine).ok


PSI = {
    "monitor": "confidence_drift",
    "metric": "psi",
    "model_name": "ticket_classifier",
    "model_version": "v1",
}


def test_schedules_and_last_runs_are_exported_for_the_stale_results_alert(engine):
    registry = CollectorRegistry()
    clock = Clock(END + 5)
    _scheduler(engine, clock, registry).tick()
    for monitor in MONITOR_NAMES:
        labels = {"monitor": monitor}
        assert registry.get_sample_value("servewatch_monitor_schedule_seconds", labels) == EVERY
        last_run = "servewatch_monitor_last_run_timestamp_seconds"
        assert registry.get_sample_value(last_run, labels) == END + 5


def test_a_restarted_scheduler_exports_the_stored_results_before_the_next_window(engine):
    _scheduler(engine, Clock(END + 5)).tick()
    registry = CollectorRegistry()
    restarted = _scheduler(engine, Clock(END + EVERY - 10), registry)
    assert restarted.tick() == []  # no window is due yet, and yet /metrics has the results
    status = "servewatch_monitor_status"
    assert registry.get_sample_value(status, {**PSI, "tenant": "globex"}) == 2
    assert registry.get_sample_value(status, {**PSI, "tenant": "initech"}) == -1
    assert registry.get_sample_value("servewatch_monitor_value", {**PSI, "tenant": "acme"}) < 0.1
    last_run = "servewatch_monitor_last_run_timestamp_seconds"
    assert registry.get_sample_value(last_run, {"monitor": "class_shift"}) == END + 5
    assert (
        registry.get_sample_value(
            "servewatch_monitor_runs_total", {"monitor": "class_shift", "outcome": "success"}
        )
        is None
    )  # restored, not run


def test_results_older_than_a_few_windows_are_not_restored_but_the_last_run_is(engine):
    _scheduler(engine, Clock(END + 5)).tick()
    registry = CollectorRegistry()
    late = _scheduler(engine, Clock(END + RESTORE_WINDOWS * EVERY + 1), registry)
    late.restore()
    status = "servewatch_monitor_status"
    assert registry.get_sample_value(status, {**PSI, "tenant": "globex"}) is None
    last_run = "servewatch_monitor_last_run_timestamp_seconds"
    assert registry.get_sample_value(last_run, {"monitor": "confidence_drift"}) == END + 5


def test_a_manual_run_neither_restores_results_nor_counts_as_a_run(engine):
    window = Window(traffic.WINDOW[0] + timedelta(minutes=7), traffic.WINDOW[1])
    outcome = run_monitors(engine, window, CONFIG, monitors=["confidence_drift"])
    store_results(engine, outcome, traffic.WINDOW[1])
    registry = CollectorRegistry()
    _scheduler(engine, Clock(END + 5), registry).restore()
    assert registry.get_sample_value("servewatch_monitor_status", {**PSI, "tenant": "acme"}) is None
    last_run = "servewatch_monitor_last_run_timestamp_seconds"
    assert registry.get_sample_value(last_run, {"monitor": "confidence_drift"}) is None


def test_when_traffic_stops_every_key_stays_exported_and_traffic_alerts(engine):
    config = AppConfig(
        monitors=MonitorsConfig(schedules=SCHEDULES, traffic=TrafficConfig(reference_hours=1))
    )
    registry = CollectorRegistry()
    clock = Clock(END + 5)
    exporter = MonitorExporter(registry, config)
    baselines = BaselineStore(engine, registry=lambda name, version: None)
    scheduler = Scheduler(engine, config, exporter, clock=clock, baselines=baselines)
    scheduler.tick()
    status = "servewatch_monitor_status"
    assert registry.get_sample_value(status, {**PSI, "tenant": "globex"}) == 2
    clock.now = END + WINDOW + 5  # the next hour had no predictions at all
    scheduler.tick()
    for tenant in ("*", "acme", "globex", "initech"):
        assert registry.get_sample_value(status, {**PSI, "tenant": tenant}) == -1, tenant
        size = registry.get_sample_value(
            "servewatch_monitor_sample_size", {**PSI, "tenant": tenant}
        )
        assert size == 0
    drop = {**PSI, "monitor": "traffic", "metric": "volume_drop"}
    for tenant in ("*", "acme", "globex"):
        assert registry.get_sample_value(status, {**drop, "tenant": tenant}) == 2, tenant
        assert (
            registry.get_sample_value("servewatch_monitor_value", {**drop, "tenant": tenant}) == 1
        )
    # initech had 30 predictions that hour: too few to tell a stop from a lull.
    assert registry.get_sample_value(status, {**drop, "tenant": "initech"}) == -1


def test_drift_reports_are_written_for_each_key_at_warn_or_alert(engine, tmp_path):
    scheduler = _scheduler(engine, Clock(END + 5))
    scheduler.monitors = ("confidence_drift", "class_shift", "schema_failures")
    scheduler.reports_dir = tmp_path / "reports"
    scheduler.tick()
    flagged = {
        (r.model_version, r.tenant)
        for r in run_monitors(
            engine, Window(*traffic.WINDOW), CONFIG, monitors=["confidence_drift"]
        ).results
        if r.status in ("warn", "alert")
    }
    assert ("v1", "globex") in flagged
    assert ("v1", "acme") not in flagged
    name = window_file(traffic.WINDOW[1])
    for version, tenant in flagged:
        folder = (
            tmp_path / "reports" / report_path("confidence_drift", traffic.MODEL, version, tenant)
        )
        assert sorted(p.name for p in folder.iterdir()) == sorted([name, LATEST])
        assert (folder / LATEST).read_text() == (folder / name).read_text()
    page = (
        tmp_path
        / "reports"
        / report_path("confidence_drift", traffic.MODEL, "v1", "globex")
        / LATEST
    ).read_text()
    assert "ticket_classifier v1, tenant globex" in page
    assert "2026-11-16T10:00:00Z .. 2026-11-16T11:00:00Z" in page
    assert "servewatch verdict for tenant globex, confidence_drift: <strong>alert</strong>" in page
    # Written after the tick: the class-shift verdicts of the same window are on the page too.
    assert "no rows for this window" not in page
    assert not (tmp_path / "reports" / "schema_failures").exists()
    assert not (
        tmp_path / "reports" / report_path("confidence_drift", traffic.MODEL, "v1", "acme")
    ).exists()
    evidently = list((tmp_path / "reports" / "evidently").rglob("*.html"))
    assert [p.name for p in evidently] == [name]


def test_no_drift_report_for_a_window_caught_up_long_after_it_ended(engine, tmp_path):
    clock = Clock(END + 5)
    scheduler = _scheduler(engine, clock)
    scheduler.monitors = ("confidence_drift",)
    scheduler.tick()
    scheduler.reports_dir = tmp_path / "reports"
    clock.now = END + 5 * EVERY + 5  # five windows are due; globex drifts in all of them
    assert _ends(scheduler.tick(), "confidence_drift") == [k * EVERY for k in range(1, 6)]
    folder = tmp_path / "reports" / report_path("confidence_drift", traffic.MODEL, "v1", "globex")
    written = sorted(p.name for p in folder.iterdir() if p.name != LATEST)
    recent = [window_file(traffic.WINDOW[1] + timedelta(seconds=k * EVERY)) for k in (3, 4, 5)]
    assert written == recent


def _result_series(registry):
    """The monitor result lines of /metrics (runs_total differs: it counts this process's runs)."""
    lines = generate_latest(registry).decode().splitlines()
    result_metrics = (
        "servewatch_monitor_value{",
        "servewatch_monitor_status{",
        "servewatch_monitor_sample_size{",
    )
    return sorted(line for line in lines if line.startswith(result_metrics))


def test_two_schedulers_of_a_pair_export_the_same_results_whichever_ran_them(engine):
    clock = Clock(END + 5)
    registries = CollectorRegistry(), CollectorRegistry()
    first, second = (_scheduler(engine, clock, registry) for registry in registries)
    half = len(MONITOR_NAMES) // 2
    # The second holds the lock of half the monitors while the first ticks, then the reverse.
    with contextlib.ExitStack() as held:
        for monitor in MONITOR_NAMES[:half]:
            assert held.enter_context(monitor_lock(engine, monitor))
        ran_first = {r.monitor for r in first.tick()}
    ran_second = {r.monitor for r in second.tick()}
    assert ran_first == set(MONITOR_NAMES[half:])
    assert ran_second == set(MONITOR_NAMES[:half])
    first.tick()  # nothing is due; it reads the windows the second ran
    assert _result_series(registries[0]) == _result_series(registries[1])
    assert {
        line.split('monitor="')[1].split('"')[0] for line in _result_series(registries[0])
    } == set(MONITOR_NAMES)
    clock.now = END + EVERY + 5  # the next window: now the second runs everything, then the first
    assert {r.monitor for r in second.tick()} == set(MONITOR_NAMES)
    assert first.tick() == []
    assert _result_series(registries[0]) == _result_series(registries[1])


def test_a_group_missing_from_the_newest_window_is_not_brought_back_from_an_older_one(engine):
    clock = Clock(END + 5)
    registries = CollectorRegistry(), CollectorRegistry()
    ran, peer = (_scheduler(engine, clock, registry) for registry in registries)
    ran.tick()
    clock.now = END + EVERY + 5
    ran.tick()
    newest = traffic.WINDOW[1] + timedelta(seconds=EVERY)
    with engine.begin() as connection:  # initech sent nothing in the newest window
        connection.execute(
            monitor_results.delete().where(
                monitor_results.c.tenant == "initech", monitor_results.c.window_end == newest
            )
        )
    assert peer.tick() == []
    ran.tick()
    status = "servewatch_monitor_status"
    for registry in registries:
        assert registry.get_sample_value(status, {**PSI, "tenant": "initech"}) is None
        assert registry.get_sample_value(status, {**PSI, "tenant": "globex"}) is not None
    assert _result_series(registries[0]) == _result_series(registries[1])


def _rollup_rows(engine):
    with engine.connect() as connection:
        folded = connection.execute(select(func.coalesce(func.sum(prediction_rollups.c.n), 0)))
        return int(folded.scalar_one())


def test_a_tick_folds_the_new_predictions_into_the_rollups_first(engine):
    scheduler = _scheduler(engine, Clock(END + 5))
    scheduler.monitors = ()
    assert _rollup_rows(engine) == 0
    scheduler.tick()
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(predictions)).scalar()
    assert _rollup_rows(engine) == stored > 0


def test_rollups_have_their_own_retention_and_outlive_the_predictions_they_hold(engine):
    config = CONFIG.model_copy(
        update={"retention": RetentionConfig(predictions_days=30, rollups_days=60)}
    )
    clock = Clock(END + 5)
    exporter = MonitorExporter(CollectorRegistry(), config)
    baselines = BaselineStore(engine, registry=lambda name, version: None)
    scheduler = Scheduler(engine, config, exporter, clock=clock, baselines=baselines, monitors=())
    scheduler.tick()
    folded = _rollup_rows(engine)

    clock.now += 31 * 86_400  # the predictions go, their rollups stay
    scheduler.tick()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(predictions)).scalar() == 0
    assert _rollup_rows(engine) == folded > 0

    clock.now += 30 * 86_400  # then the rollups go too
    [run] = _retention_runs(scheduler.tick())
    assert run.outcome == "success"
    assert run.rows > 0
    assert _rollup_rows(engine) == 0


def _partition_days(engine):
    with engine.connect() as connection:
        return {p.lower.date() for p in partitions(connection) if p.lower is not None}


def test_a_tick_creates_the_next_days_partitions_ahead_of_its_clock(engine):
    clock = Clock(END + 5)
    scheduler = _scheduler(engine, clock)
    scheduler.monitors = ()
    if engine.dialect.name != "postgresql":  # SQLite keeps one table: nothing to create
        assert scheduler.tick() == []
        return
    today = datetime.fromtimestamp(clock.now, UTC).date()
    ahead = {today + timedelta(days=i) for i in range(DAYS_AHEAD + 1)}

    assert scheduler.tick() == []
    assert ahead <= _partition_days(engine)

    clock.now += 2 * 86_400
    scheduler.tick()
    assert {day + timedelta(days=2) for day in ahead} <= _partition_days(engine)
