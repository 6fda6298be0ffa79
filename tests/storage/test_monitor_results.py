"""Reads of `monitor_results`: the windows a monitor has rows for."""

from datetime import UTC, datetime, timedelta

from core.timeutil import epoch
from storage.monitor_results import results_ending_after, window_results, windows_ending_after
from storage.writer import upsert_monitor_results

T0 = datetime(2026, 11, 16, tzinfo=UTC)


def _row(monitor, start, end, tenant, model_version="v1"):
    return {
        "monitor": monitor,
        "model_name": "m",
        "model_version": model_version,
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


def test_rows_of_one_monitor_after_a_horizon_come_back_whole_and_oldest_first(store_engine):
    hour = timedelta(hours=1)
    stamp = T0 + 2 * hour
    newer = {**_row("class_shift", T0, T0 + hour, "acme"), "details": {"reason": "x"}}
    upsert_monitor_results(
        store_engine,
        [
            {**newer, "computed_at": stamp},
            {**_row("class_shift", T0 - hour, T0, "acme"), "computed_at": stamp - hour},
            {**_row("class_shift", T0 - 2 * hour, T0 - hour, "acme"), "computed_at": stamp},
            {**_row("cost", T0, T0 + hour, "acme"), "computed_at": stamp},
        ],
    )
    rows = results_ending_after(store_engine, "class_shift", T0 - hour)
    assert [(r["window_end"], r["computed_at"]) for r in rows] == [
        (T0, stamp - hour),
        (T0 + hour, stamp),
    ]
    assert rows[-1]["window_end"].tzinfo is not None
    assert {k: rows[-1][k] for k in ("tenant", "status", "n", "details")} == {
        "tenant": "acme",
        "status": "ok",
        "n": 10,
        "details": {"reason": "x"},
    }


def test_the_rows_of_one_window_of_one_model_version(store_engine):
    hour = timedelta(hours=1)
    upsert_monitor_results(
        store_engine,
        [
            _row("class_shift", T0, T0 + hour, "acme"),
            _row("confidence_drift", T0, T0 + hour, "acme"),
            _row("confidence_drift", T0, T0 + hour, "acme", model_version="v2"),
            _row("confidence_drift", T0, T0 + 2 * hour, "acme"),
            _row("cost", T0, T0 + hour, "acme"),
        ],
    )
    rows = window_results(
        store_engine, T0, T0 + hour, "m", "v1", ("confidence_drift", "class_shift")
    )
    assert sorted(r["monitor"] for r in rows) == ["class_shift", "confidence_drift"]
    assert {(r["model_version"], r["window_end"]) for r in rows} == {("v1", T0 + hour)}
