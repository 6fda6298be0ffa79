from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from storage.schema import monitor_results, predictions
from storage.writer import (
    PREDICTION_COLUMNS,
    prediction_encoder,
    prediction_record,
    prediction_row,
    probabilities_json,
    upsert_monitor_results,
    write_predictions,
)
from tests.storage.records import T0, make_records


def _count(engine, table=predictions):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_write_predictions_round_trips_every_column(store_engine):
    records = make_records(50)
    assert write_predictions(store_engine, records) == 50
    with store_engine.connect() as connection:
        row = connection.execute(
            select(predictions).where(predictions.c.request_id == "req-7-0")
        ).one()
    expected = records[0]
    assert row.tenant == expected["tenant"]
    assert row.status == expected["status"]
    assert row.confidence == pytest.approx(expected["confidence"])
    assert row.features == {"text": "tab\there\nnewline \\ backslash"}
    ts = row.ts if row.ts.tzinfo else row.ts.replace(tzinfo=UTC)
    assert ts == T0


@pytest.mark.parametrize("ahead", [0, 7, 20])
def test_records_encoded_ahead_are_stored_as_if_encoded_at_write(store_engine, ahead):
    records = make_records(20)
    encode = prediction_encoder(store_engine)
    assert write_predictions(store_engine, records, [encode(r) for r in records[:ahead]]) == 20
    with store_engine.connect() as connection:
        stored = connection.execute(select(predictions).order_by(predictions.c.request_id)).all()
    by_id = {r["request_id"]: r for r in records}
    assert sorted(by_id) == [row.request_id for row in stored]
    for row in stored:
        assert row.probabilities == by_id[row.request_id]["probabilities"]
        assert row.features == by_id[row.request_id]["features"]


def test_rows_and_mappings_are_stored_alike(store_engine):
    records = make_records(20)
    rows = [prediction_row(r) for r in records[10:]]
    assert rows[0] == [records[10].get(column) for column in PREDICTION_COLUMNS]
    assert write_predictions(store_engine, records[:10] + rows) == 20
    with store_engine.connect() as connection:
        stored = connection.execute(select(predictions).order_by(predictions.c.request_id)).all()
    by_id = {r["request_id"]: r for r in records}
    for row in stored:
        expected = by_id[row.request_id]
        assert (row.tenant, row.probabilities, row.features) == (
            expected["tenant"],
            expected["probabilities"],
            expected["features"],
        )


def test_a_row_is_encoded_from_a_copy_and_reads_back_as_its_record():
    (record,) = make_records(1)
    row = prediction_row(record)
    encoded = prediction_encoder("sqlite://")(row)
    assert isinstance(encoded[PREDICTION_COLUMNS.index("probabilities")], str)
    assert prediction_record(row) == {c: record.get(c) for c in PREDICTION_COLUMNS}  # unchanged
    assert prediction_row({"request_id": "r"})[1:] == [None] * (len(PREDICTION_COLUMNS) - 1)
    with pytest.raises(ValueError, match="prediction row has"):
        prediction_row(row[:-1])


def test_a_replay_encoded_ahead_skips_the_ids_already_stored(store_engine):
    records = make_records(20)
    write_predictions(store_engine, records[:5])
    encode = prediction_encoder(store_engine)
    assert write_predictions(store_engine, records, [encode(r) for r in records[:12]]) == 15
    assert _count(store_engine) == 20


@pytest.mark.parametrize(
    "message",
    [
        "tab\there, newline\nthere, return\rthere, back\\slash",
        "ends in a backslash \\",
        "looks like NULL: \\N",
        "unicode: é ✓ 日本",
        "",
    ],
)
def test_text_comes_back_exactly_whatever_it_holds(store_engine, message):
    record = {**make_records(1)[0], "error_message": message, "region": message[:64]}
    record["features"] = {"text": message}
    write_predictions(store_engine, [record])
    with store_engine.connect() as connection:
        row = connection.execute(select(predictions)).one()
    assert row.error_message == message
    assert row.region == message[:64]
    assert row.features == {"text": message}


def test_whole_numbers_are_stored_in_float_columns(store_engine):
    record = {**make_records(1)[0], "latency_ms": 12, "compute_ms": 0, "confidence": 1}
    write_predictions(store_engine, [record])
    with store_engine.connect() as connection:
        row = connection.execute(select(predictions)).one()
    assert (row.latency_ms, row.compute_ms, row.confidence) == (12.0, 0.0, 1.0)


def test_replayed_records_are_ignored_not_duplicated(store_engine):
    records = make_records(30)
    write_predictions(store_engine, records[:20])
    assert write_predictions(store_engine, records) == 10
    assert write_predictions(store_engine, records + records[:5]) == 0
    assert _count(store_engine) == 30


def test_timestamps_are_stored_in_utc(store_engine):
    record = make_records(1)[0]
    record["ts"] = datetime(2026, 11, 16, 3, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    write_predictions(store_engine, [record])
    with store_engine.connect() as connection:
        ts = connection.execute(select(predictions.c.ts)).scalar_one()
    assert (ts if ts.tzinfo else ts.replace(tzinfo=UTC)) == datetime(2026, 11, 16, 3, tzinfo=UTC)


def test_empty_batch_is_a_no_op(store_engine):
    assert write_predictions(store_engine, []) == 0


def _result(value, **overrides):
    row = {
        "monitor": "class_shift",
        "metric": "psi",
        "model_name": "ticket_classifier",
        "model_version": "v1",
        "tenant": "*",
        "window_start": T0,
        "window_end": T0 + timedelta(hours=1),
        "value": value,
        "threshold": 0.25,
        "status": "ok",
        "n": 100,
    }
    row.update(overrides)
    return row


def test_monitor_results_upsert_replaces_the_same_window(store_engine):
    upsert_monitor_results(store_engine, [_result(0.1), _result(0.2, tenant="acme")])
    upsert_monitor_results(store_engine, [_result(0.3), _result(0.2, tenant="acme")])
    assert _count(store_engine, monitor_results) == 2
    with store_engine.connect() as connection:
        value = connection.execute(
            select(monitor_results.c.value).where(monitor_results.c.tenant == "*")
        ).scalar_one()
    assert value == pytest.approx(0.3)


def test_monitor_results_upsert_is_all_or_nothing(store_engine):
    upsert_monitor_results(store_engine, [_result(0.1)])
    with pytest.raises(IntegrityError):
        upsert_monitor_results(store_engine, [_result(0.5), _result(None, status=None)])
    with store_engine.connect() as connection:
        assert connection.execute(select(monitor_results.c.value)).scalar_one() == 0.1


def test_missing_json_extras_are_sql_null_on_both_stores(store_engine):
    records = make_records(20)
    write_predictions(store_engine, records)
    with store_engine.connect() as connection:
        nulls = connection.execute(
            select(func.count()).where(predictions.c.features.is_(None))
        ).scalar_one()
    assert nulls == sum(r["features"] is None for r in records)


def test_a_rerun_drops_groups_that_are_gone_from_the_window(store_engine):
    upsert_monitor_results(store_engine, [_result(0.1), _result(0.2, tenant="acme")])
    upsert_monitor_results(store_engine, [_result(0.3)])  # acme's rows were deleted since
    other_window = _result(
        0.4, window_start=T0 + timedelta(hours=1), window_end=T0 + timedelta(hours=2)
    )
    upsert_monitor_results(store_engine, [other_window])
    with store_engine.connect() as connection:
        rows = connection.execute(
            select(monitor_results.c.tenant, monitor_results.c.value).order_by(
                monitor_results.c.value
            )
        ).all()
    assert [tuple(r) for r in rows] == [("*", 0.3), ("*", 0.4)]


def test_probabilities_keep_every_float32_a_model_emits():
    import json

    import numpy as np

    rng = np.random.default_rng(7)
    emitted = rng.dirichlet(np.ones(5), size=200).astype(np.float32)
    for row in emitted:
        value = {f"class_{i}": float(p) for i, p in enumerate(row)}
        back = json.loads(probabilities_json(value))
        assert list(back) == list(value)
        assert np.array_equal(np.float32(list(back.values())), row)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": 0.0},  # ints
        {"a": True},
        {"a": float("nan"), "b": float("inf")},
        {"a": 10**400},  # no float can hold it
        {'say "%s"': 0.5, "back\\slash": 0.25},
        {},
        [0.1, 0.9],
    ],
)
def test_probabilities_that_are_not_plain_floats_are_written_as_json_writes_them(value):
    import json

    assert probabilities_json(value) == json.dumps(value, separators=(",", ":"))
    assert probabilities_json(None) is None
