"""Monitor results of past windows: the windows the scheduler would have run over a span, each
computed from the store (its rollups or raw rows, as `monitors.source` says) or from another
aggregate source (Spark over a Parquet export)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.config import AppConfig, MonitorSchedule
from core.contracts import MONITOR_NAMES
from core.timeutil import Window, windows_within
from monitors.aggregate_source import AggregateSource, aggregate_source
from monitors.baselines import BaselineStore
from monitors.runner import RunOutcome, run_monitors
from monitors.traffic import HourlyHistory
from storage.engine import Engine

# Windows whose aggregates a batch engine computes in one pass each (a day of hourly windows;
# four hours of the default 5-minute cadence): the driver holds their frames, not a year's.
BATCH_WINDOWS = 48


@dataclass(frozen=True)
class PlannedRun:
    """One window and the monitors whose schedule has it."""

    window: Window
    monitors: tuple[str, ...]


def plan(
    span: Window, config: AppConfig, monitors: Sequence[str] = MONITOR_NAMES
) -> list[PlannedRun]:
    """Each scheduled window within `span` with the monitors that run it, oldest first."""
    by_window: dict[Window, list[str]] = {}
    for monitor in monitors:
        schedule = config.monitors.schedules.get(monitor) or MonitorSchedule()
        for window in windows_within(span, schedule.every_seconds, schedule.window_seconds):
            by_window.setdefault(window, []).append(monitor)
    ordered = [m for m in MONITOR_NAMES if m in monitors]
    return [
        PlannedRun(window, tuple(m for m in ordered if m in names))
        for window, names in sorted(by_window.items())
    ]


def backfill(
    engine: Engine,
    runs: Sequence[PlannedRun],
    config: AppConfig,
    *,
    source: AggregateSource | None = None,
    baselines: BaselineStore | None = None,
    model_name: str | None = None,
    done: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run the planned windows, oldest first, with the predictions' aggregates from `source`
    (default: `monitors.source` on `engine`, the per-minute rollups unless set to raw rows); the
    traffic history is kept across them, as the scheduler does. `done` gets each window's
    outcome as soon as it is computed."""
    source = source or aggregate_source(engine, config.monitors.source)
    history, store = HourlyHistory(source), baselines or BaselineStore(engine)
    outcomes = []
    for index, run in enumerate(runs):
        if index % BATCH_WINDOWS == 0:
            source.expect([r.window for r in runs[index : index + BATCH_WINDOWS]])
        outcome = run_monitors(
            engine,
            run.window,
            config,
            model_name=model_name,
            monitors=run.monitors,
            baselines=store,
            history=history,
            source=source,
        )
        if done is not None:
            done(outcome)
        outcomes.append(outcome)
    return outcomes
