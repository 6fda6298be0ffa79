"""Reads of `monitor_results`: the windows a monitor has rows for."""

from datetime import UTC, datetime, timedelta

from core.timeutil import epoch
from storage.monitor_results import windows_ending_after
from storage.writer import upsert_monitor_results

T0 = datetime(2026, 11, 16, tzinfo=UTC)


def _row(monitor, start, end, tenant):
    return {
        "monitor": monitor,
        "model_name": "m",
        "model_version": "v1",
        "tenant": tenant,
        "window_start": start,
        "window_end": end,
        "metric": "psi",
        "value": 0.1,
        "status": "ok",
        "n": 10,
    }


def test_distinct_windows_of_one_monitor_after_a_horizon(store_engine):
    hour = timedelta(hours=1)
    upsert_monitor_results(
        store_engine,
        [
            _row("class_shift", T0, T0 + hour, "acme"),
            _row("class_shift", T0, T0 + hour, "globex"),
            _row("class_shift", T0 - hour, T0, "acme"),
            _row("cost", T0, T0 + 2 * hour, "acme"),
        ],
    )
    windows = windows_ending_after(store_engine, "class_shift", T0)
    assert [(epoch(s), epoch(e)) for s, e in windows] == [(epoch(T0), epoch(T0 + hour))]
    assert len(windows_ending_after(store_engine, "class_shift", T0 - hour)) == 2
