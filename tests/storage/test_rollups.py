import threading
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from core.confidence_grid import FINE_EDGES
from core.timeutil import to_utc
from monitors.aggregate_source import RollupAggregates, SqlAggregates
from storage import rollups
from storage.audit import lock_appends
from storage.retention import cutoff
from storage.schema import prediction_rollups, predictions, rollup_cursor
from storage.writer import write_predictions
from tests.storage.records import T0, make_records

MODEL = "ticket_classifier"


def _traffic():
    """Live batches, a late batch (older ts written after newer ones), bulk requests' rows,
    GPU rows with busy time, and a few rows on a second model."""
    live = make_records(1500, seed=1, start=T0 + timedelta(seconds=7.3), step_s=1.7)
    late = make_records(300, seed=2, start=T0 + timedelta(seconds=100), step_s=2.3)
    for i, record in enumerate(live):
        if i % 4 == 0:
            record["request_id"] = f"bulk-{i // 12}:{i % 3}"
        if i % 6 == 0:
            record.update(resource_class="gpu", busy_ms=record["compute_ms"] * 3)
        if i % 50 == 0:
            record["model_name"] = "risk_scorer"
    return live, late


def _load(engine, fold_between=True):
    """The traffic written in batches, folding between some of them; an outage's late batch,
    a spill replay (the same rows again) and duplicates inside one batch."""
    live, late = _traffic()
    for i in range(0, 1200, 200):
        write_predictions(engine, live[i : i + 200])
        if fold_between and i % 400 == 0:
            rollups.fold_rollups(engine, limit=150)
    write_predictions(engine, late)  # older than what is already folded
    write_predictions(engine, live[:400])  # the spill replay: every row refused
    write_predictions(engine, live[1200:] + live[1250:1300])  # duplicates in one batch
    return live, late


WINDOWS = [
    (T0, T0 + timedelta(hours=1), None),
    (T0 + timedelta(seconds=13.5), T0 + timedelta(seconds=2000.25), None),
    (T0 + timedelta(seconds=61), T0 + timedelta(seconds=62.5), None),
    (T0 + timedelta(minutes=2), T0 + timedelta(minutes=30), MODEL),
    (T0 + timedelta(minutes=5, seconds=1), T0 + timedelta(minutes=45), "risk_scorer"),
]
EDGES = [
    [0.0, 0.25, 0.5, 0.75, 1.0],
    [0.5, 0.6, 0.7],
    list(FINE_EDGES),
    [0.0, 0.333, 1.0],  # off the fine grid: answered from raw rows
]


def _sorted(frame, values):
    keys = [c for c in frame.columns if c not in values]
    ordered = frame.sort_values(keys, na_position="first", kind="stable")
    return ordered.reset_index(drop=True)


def assert_same(got, expected, values=("n",)):
    """Same keys and columns, counts equal, sums within 1e-9."""
    assert list(got.columns) == list(expected.columns)
    got, expected = _sorted(got, values), _sorted(expected, values)
    keys = [c for c in got.columns if c not in values]
    pd.testing.assert_frame_equal(got[keys], expected[keys], check_dtype=False)
    for column in values:
        if expected[column].dtype.kind == "f":
            assert np.allclose(got[column], expected[column], rtol=0, atol=1e-9), column
        else:
            assert got[column].tolist() == expected[column].tolist(), column


@pytest.mark.parametrize("fold_between", [True, False])
def test_rollups_answer_every_frame_as_raw_rows_do(store_engine, fold_between):
    _load(store_engine, fold_between)
    raw, rolled = SqlAggregates(store_engine), RollupAggregates(store_engine)
    for start, end, model in WINDOWS:
        for name in ("class_counts", "status_counts"):
            assert_same(
                getattr(rolled, name)(start, end, model), getattr(raw, name)(start, end, model)
            )
        assert_same(
            rolled.compute_totals(start, end, model),
            raw.compute_totals(start, end, model),
            values=("n", "requests", "compute_ms", "busy_ms"),
        )
        for edges in EDGES:
            assert_same(
                rolled.confidence_histogram(start, end, edges, model),
                raw.confidence_histogram(start, end, edges, model),
            )
        assert_same(rolled.hourly_counts(start, end, model), raw.hourly_counts(start, end, model))
        assert_same(
            rolled.daily_compute_totals(start, end, model),
            raw.daily_compute_totals(start, end, model),
            values=("n", "requests", "compute_ms", "busy_ms"),
        )
        assert_same(
            rolled.hourly_busy_ms(start, end), raw.hourly_busy_ms(start, end), values=("busy_ms",)
        )
        assert rolled.first_prediction_day(end) == raw.first_prediction_day(end)
        for first_start in (start, None):
            assert_same(
                rolled.first_predictions(first_start, end, model),
                raw.first_predictions(first_start, end, model),
                values=("first_ts",),
            )


def test_rollups_answer_periods_as_raw_rows_do(store_engine):
    _load(store_engine)
    raw, rolled = SqlAggregates(store_engine), RollupAggregates(store_engine)
    separate = [
        (MODEL, "v1", None, T0 + timedelta(seconds=10.5), T0 + timedelta(seconds=900)),
        (MODEL, "v2", "acme", T0, T0 + timedelta(minutes=30)),
        (MODEL, "v2", "globex", T0 + timedelta(seconds=30), T0 + timedelta(seconds=50)),
    ]
    overlapping = [*separate, (MODEL, "v1", "acme", T0, T0 + timedelta(minutes=20))]
    for periods in (separate, overlapping):
        assert_same(rolled.period_class_counts(periods), raw.period_class_counts(periods))
        for edges in EDGES:
            assert_same(
                rolled.period_confidence_histogram(periods, edges),
                raw.period_confidence_histogram(periods, edges),
            )


def _table(engine):
    with engine.connect() as connection:
        rows = connection.execute(select(prediction_rollups)).mappings().all()
        cursor = connection.execute(select(rollup_cursor.c.last_id)).scalar_one()
    contents = sorted(
        (
            tuple(
                str(r[c])
                for c in (
                    "minute",
                    "model_name",
                    "model_version",
                    "tenant",
                    "endpoint",
                    "resource_class",
                )
            ),
            r["n"],
            r["requests"],
            r["statuses"],
            r["classes"],
            r["confidence_bins"],
            r["latency_buckets"],
            str(r["first_ts"]),
            str(r["last_ts"]),
            str(r["first_ok_ts"]),
        )
        for r in rows
    )
    return cursor, contents


def test_fold_is_idempotent_and_batch_size_does_not_matter(store_engine, tmp_path):
    _load(store_engine, fold_between=True)
    assert rollups.fold_pending(store_engine) > 0
    folded = _table(store_engine)
    assert rollups.fold_rollups(store_engine) == 0
    assert rollups.fold_pending(store_engine) == 0
    assert _table(store_engine) == folded
    with store_engine.connect() as connection:
        last = connection.execute(
            select(predictions.c.id).order_by(predictions.c.id.desc())
        ).first()
        total = connection.execute(select(prediction_rollups.c.n)).scalars().all()
    assert folded[0] == last[0]
    assert sum(total) == len({r["request_id"] for r in _traffic()[0] + _traffic()[1]})


def test_a_fold_that_fails_midway_changes_nothing(store_engine, monkeypatch):
    write_predictions(store_engine, make_records(300, seed=3))
    rollups.fold_rollups(store_engine, limit=100)
    before = _table(store_engine)
    merge = rollups._merge

    def merge_then_fail(connection, batch):
        merge(connection, batch)  # the rollups are written, then the process dies
        raise RuntimeError("crash before the cursor moves")

    monkeypatch.setattr(rollups, "_merge", merge_then_fail)
    with pytest.raises(RuntimeError, match="crash"):
        rollups.fold_rollups(store_engine, limit=100)
    assert _table(store_engine) == before
    monkeypatch.undo()
    rollups.fold_pending(store_engine)
    raw = SqlAggregates(store_engine).status_counts(T0, T0 + timedelta(hours=1))
    assert_same(rollups.status_counts(store_engine, T0, T0 + timedelta(hours=1)), raw)


def _minutes(engine):
    with engine.connect() as connection:
        stored = connection.execute(select(prediction_rollups.c.minute)).scalars().all()
    return sorted(to_utc(m) for m in stored)


def test_pruning_rollups_leaves_predictions(store_engine):
    write_predictions(store_engine, make_records(600, seed=4))  # ten minutes of traffic
    rollups.fold_pending(store_engine)
    minutes = _minutes(store_engine)
    before = cutoff(T0 + timedelta(days=1, minutes=5), keep_days=1)
    assert rollups.prune_rollups(store_engine, before) == sum(m < before for m in minutes)
    assert _minutes(store_engine) == [m for m in minutes if m >= before]
    assert min(_minutes(store_engine)) == T0 + timedelta(minutes=5)
    with store_engine.connect() as connection:
        assert len(connection.execute(select(predictions.c.id)).all()) == 600


def test_edges_off_the_fine_grid_are_not_answered_by_fine_bins():
    assert rollups.coarse_bins([0.0, 0.333, 1.0]) is None
    assert rollups.coarse_bins([0.0, 0.5, 1.0]) == [0] * 100 + [1] * 100
    assert rollups.coarse_bins([0.5, 0.6, 0.7]) == [0] * 120 + [1] * 80


def test_a_fold_stops_at_the_newest_id_it_was_given(store_engine):
    write_predictions(store_engine, make_records(300, seed=5))
    newest = rollups.newest_pending(store_engine)
    write_predictions(store_engine, make_records(50, seed=6))  # written after the fold began
    assert rollups.fold_rollups(store_engine, limit=1000, up_to=newest) == 300
    assert rollups.fold_rollups(store_engine, limit=1000, up_to=newest) == 0
    assert rollups.newest_pending(store_engine) == newest + 50
    assert rollups.fold_pending(store_engine) == 50
    assert rollups.newest_pending(store_engine) is None


# PostgreSQL only: SQLite has one writer at a time, so a fold simply waits for it.
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_fold_never_passes_a_prediction_still_being_written(store_engine):
    """Writers append under the audit chain's lock: while one holds ids it has not committed,
    no later id commits, so the cursor cannot move past an uncommitted row."""
    first, second = make_records(2, seed=8)
    with store_engine.connect() as writing:
        transaction = writing.begin()
        lock_appends(writing)  # what storage.writer takes before it inserts
        writing.execute(insert(predictions).values(**first))
        later = threading.Thread(target=write_predictions, args=(store_engine, [second]))
        later.start()
        later.join(timeout=0.5)
        assert later.is_alive()  # the later batch waits for the lock, its id not committed
        assert rollups.fold_pending(store_engine) == 0
        transaction.commit()
    later.join()
    assert rollups.fold_pending(store_engine) == 2
    with store_engine.connect() as connection:
        cursor = connection.execute(select(rollup_cursor.c.last_id)).scalar_one()
        newest = connection.execute(select(func.max(predictions.c.id))).scalar_one()
    assert cursor == newest
