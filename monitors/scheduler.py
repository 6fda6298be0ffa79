"""Runs each monitor on its cadence, catching up missed windows, one process at a time per monitor.

Windows end on multiples of the monitor's `every_seconds` (since the epoch). The last completed
window is remembered in memory and, across restarts, read back from `monitor_results`. A failed
run is logged and counted, and its window is due again at the next tick.

At every tick, after running its due windows, the scheduler puts the stored results back into
its gauges (each monitor's newest scheduled window, if it ended at most RESTORE_WINDOWS runs ago)
and the time of each monitor's last completed run: after a restart /metrics is not empty until
the next window closes, a stale monitor stays visibly stale, and two schedulers on one store
(a pair for high availability) export the same results whichever of them ran each window.
For every recent window where a drift monitor is at warn or alert it writes the drift report
of each such key (monitors.drift_report).

When the config sets a retention, the scheduler prunes the store (storage.retention) at its first
tick and then once a day, after the tick's monitor windows, a minute a tick at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import AppConfig, MonitorSchedule
from core.contracts import MONITOR_NAMES
from core.timeutil import Window, aligned_end, due_windows, epoch
from monitors.aggregate_source import aggregate_source
from monitors.baselines import BaselineStore
from monitors.cost import MONITOR as COST
from monitors.drift_report import flagged_keys, write_window_reports
from monitors.exporter import MonitorExporter
from monitors.results import MonitorResult
from monitors.runner import RunOutcome, run_monitors, store_results
from monitors.traffic import HourlyHistory
from monitors.week_costs import tenant_week_costs
from storage.engine import Engine
from storage.locks import monitor_lock
from storage.monitor_results import results_ending_after, window_runs, windows_ending_after
from storage.retention import PruneResult, cutoff, plan_prune, prune
from storage.rollups import fold_pending, prune_rollups

log = logging.getLogger("servewatch.monitors.scheduler")
Clock = Callable[[], float]
FINOPS = "finops"  # the weekly report's name in logs, locks and servewatch_monitor_runs_total
DRIFT_REPORTS = "drift_report"  # the drift reports' name in logs and servewatch_monitor_runs_total
ROLLUPS = "rollups"  # the fold of predictions into the per-minute rollups, in logs
RETENTION = "retention"  # the daily prune's name in logs, locks and servewatch_monitor_runs_total
RETENTION_EVERY_S = 86_400
# A tick prunes for at most this long (then its monitors are due again); the next tick goes on.
RETENTION_BUDGET_S = 60.0
# Results (and drift reports) of windows that ended at most this many runs ago are current: they
# are restored into the gauges at start, and a window run later than that writes no report.
# The same count of missed runs makes a monitor stale in the alerts.
RESTORE_WINDOWS = 3
# At most this many missed windows per monitor are caught up after downtime (a day at 5 min).
DEFAULT_MAX_CATCHUP = 288


@dataclass(frozen=True)
class WindowRun:
    """What happened to one due window at a tick."""

    monitor: str
    window: Window | None  # None for the FinOps report, or a failure before any window
    outcome: str  # "success" or "failure"
    rows: int = 0  # rows stored (files written, for the FinOps report)
    error: str | None = None
    week: str | None = None  # the FinOps report's ISO week


@dataclass
class Scheduler:
    """Ticks due monitor windows; `clock` is injectable so that tests need no sleeping."""

    engine: Engine
    config: AppConfig
    exporter: MonitorExporter
    clock: Clock = time.time
    max_catchup: int = DEFAULT_MAX_CATCHUP
    baselines: BaselineStore | None = None
    monitors: tuple[str, ...] = MONITOR_NAMES
    # Where the weekly FinOps report goes (None: not written by this scheduler).
    finops_out_dir: Path | None = None
    # Where drift reports of windows at warn or alert go (None: not written).
    reports_dir: Path | None = None
    history: HourlyHistory | None = None  # the traffic monitor's hourly counts, kept across runs
    _last_end: dict[str, float] = field(default_factory=dict)
    _pending_reports: dict[Window, list[MonitorResult]] = field(default_factory=dict)
    _last_prune: float | None = None

    def __post_init__(self) -> None:
        if self.baselines is None:
            self.baselines = BaselineStore(self.engine)
        if self.history is None:
            source = aggregate_source(self.engine, self.config.monitors.source)
            self.history = HourlyHistory(source)

    def schedule(self, monitor: str) -> MonitorSchedule:
        return self.config.monitors.schedules.get(monitor) or MonitorSchedule()

    def due(self, monitor: str, now: float) -> list[Window]:
        """Windows of `monitor` that have ended and have not been run yet."""
        plan = self.schedule(monitor)
        last = self._last_completed(monitor, plan, now)
        return due_windows(now, plan.every_seconds, plan.window_seconds, last, self.max_catchup)

    def _last_completed(self, monitor: str, plan: MonitorSchedule, now: float) -> float | None:
        remembered = self._last_end.get(monitor)
        stored = self._stored_last_end(monitor, plan, now)
        known = [t for t in (remembered, stored) if t is not None]
        return max(known) if known else None

    def _catchup_horizon(self, plan: MonitorSchedule, now: float) -> datetime:
        return datetime.fromtimestamp(
            now - (self.max_catchup + 1) * plan.every_seconds - plan.window_seconds, UTC
        )

    def _stored_last_end(self, monitor: str, plan: MonitorSchedule, now: float) -> float | None:
        """The newest scheduled window of `monitor` that left rows in `monitor_results`."""
        horizon = self._catchup_horizon(plan, now)
        ends = [
            epoch(end)
            for start, end in windows_ending_after(self.engine, monitor, horizon)
            if _scheduled(start, end, plan)
        ]
        return max(ends) if ends else None

    def restore(self) -> None:
        """Put each monitor's last run time and the results of its newest current window, from
        the store, into the gauges (whichever process ran that window)."""
        now = self.clock()
        for monitor in self.monitors:
            plan = self.schedule(monitor)
            runs = [
                computed_at
                for start, end, computed_at in window_runs(
                    self.engine, monitor, self._catchup_horizon(plan, now)
                )
                if _scheduled(start, end, plan)
            ]
            if runs:
                self.exporter.restore_last_run(monitor, max(runs).timestamp())
            current = datetime.fromtimestamp(now - self._current_seconds(monitor), UTC)
            rows = results_ending_after(self.engine, monitor, current)
            results = _newest_window(
                r for r in rows if _scheduled(r["window_start"], r["window_end"], plan)
            )
            if results:
                self.exporter.publish(monitor, results)
                log.debug("monitor %s: %d results restored from the store", monitor, len(results))

    def tick(self) -> list[WindowRun]:
        """Run every due window of every monitor, oldest first; a failure stops that monitor.

        Then the gauges are restored from the store, at every tick: a scheduler of a pair
        exports the windows the other one ran (it held their lock) as well as its own.
        """
        runs: list[WindowRun] = self._tick_rollups()
        for monitor in self.monitors:
            try:
                runs.extend(self._tick_monitor(monitor))
            except Exception as exc:  # e.g. the store is unreachable: retried at the next tick
                log.exception("monitor %s: cannot plan its windows", monitor)
                self.exporter.record_run(monitor, False, 0.0, self.clock())
                runs.append(WindowRun(monitor, None, "failure", error=_describe(exc)))
        try:
            self.restore()
        except Exception:  # the store may be down: the next tick tries again
            log.exception("cannot restore the stored monitor results")
        self._write_reports()
        runs.extend(self._tick_finops())
        runs.extend(self._tick_retention())
        return runs

    def _tick_rollups(self) -> list[WindowRun]:
        """Fold the predictions written since the last tick into the rollups (the monitors
        would fold them anyway: folding first keeps each window's run short)."""
        if self.config.monitors.source != "rollups":
            return []
        started = self.clock()
        try:
            rows = fold_pending(self.engine)
        except Exception as exc:  # the monitors fold again, or fail with the store
            log.exception("cannot fold the predictions into the rollups")
            return [WindowRun(ROLLUPS, None, "failure", error=_describe(exc))]
        log.info("folded %d predictions into the rollups in %.3f s", rows, self.clock() - started)
        return []

    def _tick_monitor(self, monitor: str) -> list[WindowRun]:
        runs: list[WindowRun] = []
        with monitor_lock(self.engine, monitor) as acquired:
            if not acquired:
                log.info("monitor %s is running in another process; skipping this tick", monitor)
                return runs
            # Read the due windows under the lock: another process may just have run them.
            for window in self.due(monitor, self.clock()):
                run = self._run_window(monitor, window)
                runs.append(run)
                if run.outcome != "success":
                    break
        return runs

    def _tick_finops(self) -> list[WindowRun]:
        """Write the weekly FinOps report once it is due (config.monitors.finops_weekday)."""
        if self.finops_out_dir is None:
            return []
        from monitors.finops.report import due_week, write_weekly_report

        now = datetime.fromtimestamp(self.clock(), UTC)
        started = self.clock()
        try:
            with monitor_lock(self.engine, FINOPS) as acquired:
                week = due_week(now, self.config.monitors.finops_weekday, self.finops_out_dir)
                if not acquired or week is None:
                    return []
                paths = write_weekly_report(
                    self.engine, self.config, week, self.finops_out_dir, now=now
                )
        except Exception as exc:
            log.exception("the weekly FinOps report failed")
            self.exporter.record_run(FINOPS, False, self.clock() - started, self.clock())
            return [WindowRun(FINOPS, None, "failure", error=_describe(exc))]
        self.exporter.record_run(FINOPS, True, self.clock() - started, self.clock())
        log.info("weekly FinOps report %s written to %s", week, self.finops_out_dir)
        return [WindowRun(FINOPS, None, "success", rows=len(paths), week=week)]

    def _tick_retention(self) -> list[WindowRun]:
        """Prune the store once a day when the config sets a retention, for at most
        RETENTION_BUDGET_S a tick (a failed or unfinished prune goes on at the next tick);
        `rows` counts the rows deleted from every table."""
        retention = self.config.retention
        kept = (retention.predictions_days, retention.monitor_results_days, retention.rollups_days)
        if all(days is None for days in kept):
            return []
        started = self.clock()
        if self._last_prune is not None and started < self._last_prune + RETENTION_EVERY_S:
            return []
        now = datetime.fromtimestamp(started, UTC)
        try:
            with monitor_lock(self.engine, RETENTION) as acquired:
                if not acquired:
                    return []
                result = self._prune_tables(now, started)
                rollups_before = cutoff(now, retention.rollups_days)
                rollups = (
                    0 if rollups_before is None else prune_rollups(self.engine, rollups_before)
                )
        except Exception as exc:
            log.exception("the daily prune failed")
            self.exporter.record_run(RETENTION, False, self.clock() - started, self.clock())
            return [WindowRun(RETENTION, None, "failure", error=_describe(exc))]
        if result is None or result.finished:
            self._last_prune = started
        self.exporter.record_run(RETENTION, True, self.clock() - started, self.clock())
        predictions, results = (
            (0, 0) if result is None else (result.predictions, result.monitor_results)
        )
        log.info(
            "pruned %d predictions, %d monitor results and %d rollups",
            predictions,
            results,
            rollups,
        )
        return [WindowRun(RETENTION, None, "success", rows=predictions + results + rollups)]

    def _prune_tables(self, now: datetime, started: float) -> PruneResult | None:
        """Prune predictions and monitor results (None: the config keeps both)."""
        retention = self.config.retention
        if retention.predictions_days is None and retention.monitor_results_days is None:
            return None
        plan = plan_prune(
            self.engine,
            now=now,
            keep_days=retention.predictions_days,
            monitor_results_keep_days=retention.monitor_results_days,
        )
        return prune(
            self.engine,
            plan,
            now=now,
            actor="servewatch monitor schedule",
            keep_going=lambda: self.clock() - started < RETENTION_BUDGET_S,
        )

    def _run_window(self, monitor: str, window: Window) -> WindowRun:
        started = self.clock()
        try:
            outcome = run_monitors(
                self.engine,
                window,
                self.config,
                monitors=[monitor],
                baselines=self.baselines,
                history=self.history,
            )
            store_results(self.engine, outcome, datetime.fromtimestamp(self.clock(), UTC))
        except Exception as exc:
            log.exception(
                "monitor %s failed for window %s .. %s", monitor, window.start, window.end
            )
            self.exporter.record_run(monitor, False, self.clock() - started, self.clock())
            return WindowRun(monitor, window, "failure", error=_describe(exc))
        self._last_end[monitor] = window.end.timestamp()
        self.exporter.publish(monitor, outcome.results)
        latest = aligned_end(self.clock(), self.schedule(monitor).every_seconds)
        if monitor == COST and outcome.costs is not None and window.end.timestamp() >= latest:
            self._publish_costs(outcome.costs, window)
        self.exporter.record_run(monitor, True, self.clock() - started, self.clock())
        self._queue_reports(monitor, window, outcome)
        log.info(
            "monitor %s: %d rows for %s .. %s",
            monitor,
            len(outcome.results),
            window.start.isoformat(),
            window.end.isoformat(),
        )
        return WindowRun(monitor, window, "success", rows=len(outcome.results))

    def _queue_reports(self, monitor: str, window: Window, outcome: RunOutcome) -> None:
        """Keep a recent window's rows at warn or alert for the reports written after the tick."""
        if self.reports_dir is None or not flagged_keys(outcome.results):
            return
        if window.end.timestamp() < self.clock() - self._current_seconds(monitor):
            log.info("monitor %s: no drift report for the caught-up window %s", monitor, window)
            return
        self._pending_reports.setdefault(window, []).extend(outcome.results)

    def _current_seconds(self, monitor: str) -> float:
        return RESTORE_WINDOWS * self.schedule(monitor).every_seconds

    def _write_reports(self) -> None:
        """The drift reports of the tick's windows, once every drift monitor of them has run
        (so each page has both verdicts, and Evidently runs once per model version)."""
        pending, self._pending_reports = self._pending_reports, {}
        if self.reports_dir is None:
            return
        for window, results in sorted(pending.items()):
            started = self.clock()
            try:
                pages = write_window_reports(
                    self.engine,
                    self.config,
                    results,
                    window,
                    self.reports_dir,
                    baselines=self.baselines,
                    now=datetime.fromtimestamp(started, UTC),
                )
            except Exception:  # the window's rows are stored and exported; only its report is lost
                log.exception("drift reports for %s failed", window)
                self.exporter.record_run(DRIFT_REPORTS, False, self.clock() - started, self.clock())
                continue
            self.exporter.record_run(DRIFT_REPORTS, True, self.clock() - started, self.clock())
            log.info("%d drift report(s) of %s written to %s", len(pages), window, self.reports_dir)

    def _publish_costs(self, costs: pd.DataFrame, window: Window) -> None:
        self.exporter.publish_costs(costs)
        self.exporter.publish_week_costs(
            tenant_week_costs(
                aggregate_source(self.engine, self.config.monitors.source),
                window.end,
                self.config.pricing,
            )
        )

    def next_tick_at(self, now: float) -> float:
        """When the next window of any monitor ends."""
        return min(
            aligned_end(now, self.schedule(m).every_seconds) + self.schedule(m).every_seconds
            for m in self.monitors
        )

    def serve(self, stop: threading.Event, max_wait_s: float = 60.0) -> None:
        """Tick until `stop` is set, sleeping until the next window ends (bounded by max_wait_s)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # the store may be down: keep serving /metrics and retry
                log.exception("scheduler tick failed")
            wait = min(max(self.next_tick_at(self.clock()) - self.clock(), 0.05), max_wait_s)
            stop.wait(wait)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _scheduled(start: datetime, end: datetime, plan: MonitorSchedule) -> bool:
    """Whether [start, end) is a window of the schedule (those of manual runs do not count)."""
    return epoch(end) - epoch(start) == plan.window_seconds and epoch(end) % plan.every_seconds == 0


def _newest_window(rows: Iterable[Mapping[str, Any]]) -> list[MonitorResult]:
    """The rows of the newest window (`rows` come oldest window first): what the scheduler that
    ran it published, so a group missing from it is not brought back from an older window."""
    newest: dict[tuple[str, ...], MonitorResult] = {}
    newest_end = None
    for row in rows:
        if row["window_end"] != newest_end:
            newest, newest_end = {}, row["window_end"]
        result = MonitorResult.from_row(row)
        newest[result.key] = result
    return list(newest.values())
