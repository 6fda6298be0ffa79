from collections import Counter
from datetime import timedelta

import numpy as np
import pytest

from storage.aggregates import (
    class_counts,
    compute_totals,
    confidence_histogram,
    daily_compute_totals,
    first_prediction_day,
    first_predictions,
    hourly_busy_ms,
    hourly_counts,
    period_class_counts,
    period_confidence_histogram,
    status_counts,
)
from storage.writer import write_predictions
from tests.storage.records import T0, make_records

START, END = T0, T0 + timedelta(seconds=600)


@pytest.fixture
def records(store_engine):
    rows = make_records(1000, step_s=1.0)  # 1000 s of traffic; the window covers the first 600
    write_predictions(store_engine, rows)
    return [r for r in rows if START <= r["ts"] < END]


def _key(r):
    return (r["model_name"], r["model_version"], r["tenant"], r["endpoint"])


def test_class_counts_match_python(store_engine, records):
    frame = class_counts(store_engine, START, END)
    expected = Counter((*_key(r), r["predicted_class"]) for r in records if r["status"] == "ok")
    got = {tuple(row[:-1]): row[-1] for row in frame.itertuples(index=False)}
    assert got == dict(expected)


def test_confidence_histogram_matches_numpy(store_engine, records):
    edges = [0.0, 0.3, 0.5, 0.55, 0.9, 1.0]
    frame = confidence_histogram(store_engine, START, END, edges)
    ok = [r["confidence"] for r in records if r["status"] == "ok"]
    expected, _ = np.histogram(ok, bins=edges)
    totals = frame.groupby("bin")["n"].sum().reindex(range(len(edges) - 1), fill_value=0)
    assert totals.tolist() == expected.tolist()


def test_confidence_histogram_clamps_values_outside_the_edges(store_engine, records):
    frame = confidence_histogram(store_engine, START, END, [0.5, 0.6, 0.7])
    ok = [r["confidence"] for r in records if r["status"] == "ok"]
    totals = frame.groupby("bin")["n"].sum()
    assert totals[0] == sum(c < 0.6 for c in ok)
    assert totals[1] == sum(c >= 0.6 for c in ok)


def test_compute_and_status_totals(store_engine, records):
    totals = compute_totals(store_engine, START, END)
    assert totals["n"].sum() == len(records)
    assert totals["compute_ms"].sum() == pytest.approx(sum(r["compute_ms"] for r in records))
    statuses = status_counts(store_engine, START, END).groupby("status")["n"].sum()
    assert statuses.to_dict() == dict(Counter(r["status"] for r in records))


def test_model_filter_and_daily_totals(store_engine, records):
    assert class_counts(store_engine, START, END, model_name="risk_scorer").empty
    daily = daily_compute_totals(store_engine, START, END)
    assert set(daily["day"]) == {T0.date()}
    assert daily["n"].sum() == len(records)


def test_inverted_window_is_refused(store_engine):
    with pytest.raises(ValueError, match="inverted"):
        class_counts(store_engine, END, START)


def test_first_prediction_day_is_the_utc_day_of_the_earliest_row_before(store_engine, records):
    assert first_prediction_day(store_engine, END) == START.date()
    assert first_prediction_day(store_engine, START) is None


def test_requests_count_a_bulk_request_once_and_busy_time_falls_back_to_compute(store_engine):
    base = make_records(4, step_s=1.0)[0]
    rows = [
        {**base, "request_id": f"bulk:{i}", "compute_ms": 0.5, "busy_ms": 2.0} for i in range(12)
    ]  # one bulk request of 12 items (ids :0 .. :11, so :10 is not its first)
    rows.append({**base, "request_id": "single", "compute_ms": 1.0, "busy_ms": 7.0})
    rows.append({**base, "request_id": "failed-bulk", "compute_ms": 3.0, "status": "timeout"})
    rows.append({**base, "request_id": "old", "compute_ms": 4.0})  # written before busy_ms
    write_predictions(store_engine, rows)
    for totals in (
        compute_totals(store_engine, START, END),
        daily_compute_totals(store_engine, START, END),
    ):
        assert totals["n"].sum() == 15
        assert totals["requests"].sum() == 4
        assert totals["compute_ms"].sum() == pytest.approx(12 * 0.5 + 1.0 + 3.0 + 4.0)
        assert totals["busy_ms"].sum() == pytest.approx(12 * 2.0 + 7.0 + 3.0 + 4.0)


def test_hourly_busy_time_per_utc_hour(store_engine):
    rows = make_records(3, step_s=1800.0)  # 00:00, 00:30, 01:00
    for i, row in enumerate(rows):
        row["busy_ms"] = 10.0 * (i + 1)
    write_predictions(store_engine, rows)
    hours = hourly_busy_ms(store_engine, START, START + timedelta(hours=3))
    assert [h.hour for h in hours["hour"]] == [0, 1]
    assert hours["busy_ms"].tolist() == pytest.approx([30.0, 30.0])
    assert str(hours["hour"].iloc[0].tz) == "UTC"


def test_hourly_counts_bucket_every_status_by_whole_hours_since_the_start(store_engine):
    rows = make_records(1500, step_s=7.5)  # 3 h 7.5 min; rows fall on every hour's first second
    write_predictions(store_engine, rows)
    start = T0 + timedelta(seconds=150)
    end = start + timedelta(hours=2, minutes=30)
    frame = hourly_counts(store_engine, start, end)
    expected = Counter(
        (
            r["model_name"],
            r["model_version"],
            r["tenant"],
            int((r["ts"] - start).total_seconds()) // 3600,
        )
        for r in rows
        if start <= r["ts"] < end
    )
    got = {tuple(row[:-1]): row[-1] for row in frame.itertuples(index=False)}
    assert got == dict(expected)
    assert sorted({key[-1] for key in got}) == [0, 1, 2]  # the last hour is the partial half
    assert sum(got.values()) == 2.5 * 3600 / 7.5


def _ok(rows):
    return [r for r in rows if r["status"] == "ok"]


def test_first_predictions_per_key_from_the_start_or_from_a_time(store_engine):
    rows = make_records(1000, step_s=1.0)
    write_predictions(store_engine, rows)
    frame = first_predictions(store_engine, None, END)
    expected = {}
    for r in _ok(rows):
        key = (r["model_name"], r["model_version"], r["tenant"])
        if r["ts"] < END and key not in expected:
            expected[key] = r["ts"]
    got = {tuple(row[:3]): row[3] for row in frame.itertuples(index=False)}
    assert got == expected
    later = first_predictions(store_engine, START + timedelta(seconds=300), END)
    assert all(t >= START + timedelta(seconds=300) for t in later["first_ts"])
    assert first_predictions(store_engine, None, END, model_name="risk_scorer").empty


def test_period_aggregates_count_each_key_within_its_own_period(store_engine):
    rows = make_records(1000, step_s=1.0)
    write_predictions(store_engine, rows)
    acme = ("ticket_classifier", "v1", "acme", START, START + timedelta(seconds=100))
    every_v2 = ("ticket_classifier", "v2", None, START + timedelta(seconds=500), END)
    periods = [acme, every_v2]

    def inside(r):
        return any(
            (r["model_name"], r["model_version"]) == (model, version)
            and start <= r["ts"] < end
            and tenant in (None, r["tenant"])
            for model, version, tenant, start, end in periods
        )

    chosen = [r for r in _ok(rows) if inside(r)]
    classes = period_class_counts(store_engine, periods)
    expected = Counter(
        (r["model_name"], r["model_version"], r["tenant"], r["predicted_class"]) for r in chosen
    )
    assert {tuple(row[:-1]): row[-1] for row in classes.itertuples(index=False)} == expected
    edges = [0.0, 0.3, 0.5, 0.55, 0.9, 1.0]
    histogram = period_confidence_histogram(store_engine, periods, edges)
    assert histogram["n"].sum() == len(chosen)
    counts = histogram.groupby("bin")["n"].sum().reindex(range(5), fill_value=0)
    assert counts.tolist() == np.histogram([r["confidence"] for r in chosen], edges)[0].tolist()
    with pytest.raises(ValueError, match="period"):
        period_class_counts(store_engine, [])
