"""Sampled raw rows of one model's successful predictions (the drift report's input)."""

from collections import Counter
from datetime import timedelta

import pytest

from storage.prediction_samples import SAMPLE_COLUMNS, busiest_version, sampled_rows
from storage.writer import write_predictions
from tests.storage.records import T0, make_records

START, END = T0, T0 + timedelta(seconds=600)


@pytest.fixture
def records(store_engine):
    rows = make_records(1000, step_s=1.0)
    write_predictions(store_engine, rows)
    return [r for r in rows if START <= r["ts"] < END and r["status"] == "ok"]


def test_the_busiest_version_has_the_most_successful_predictions(store_engine, records):
    counts = Counter(r["model_version"] for r in records)
    expected = min(counts, key=lambda v: (-counts[v], v))
    assert busiest_version(store_engine, "ticket_classifier", START, END) == expected
    assert busiest_version(store_engine, "no_such_model", START, END) is None


def test_rows_are_all_returned_below_the_cap_and_sampled_evenly_above(store_engine, records):
    v1 = [r for r in records if r["model_version"] == "v1"]
    everything = sampled_rows(store_engine, "ticket_classifier", "v1", START, END, 10_000)
    assert list(everything.columns) == list(SAMPLE_COLUMNS)
    assert sorted(everything["confidence"]) == pytest.approx(sorted(r["confidence"] for r in v1))
    sampled = sampled_rows(store_engine, "ticket_classifier", "v1", START, END, 50)
    # Every k-th id of the whole table (k = ceil(rows / cap)): about the cap, not exactly it.
    assert 0 < len(sampled) < len(everything)
    assert len(sampled) == pytest.approx(50, rel=0.2)


def test_prediction_count_counts_the_rows(store_engine):
    from storage.prediction_samples import prediction_count
    from storage.writer import write_predictions
    from tests.storage.records import make_records

    assert prediction_count(store_engine) == 0
    write_predictions(store_engine, make_records(7))
    assert prediction_count(store_engine) == 7


def test_stored_inputs_are_the_rows_with_an_input_and_the_others_are_counted(store_engine):
    from storage.prediction_samples import STORED_INPUT_COLUMNS, RowScope, stored_inputs

    rows = make_records(400, step_s=1.0)
    write_predictions(store_engine, rows)
    window = [r for r in rows if START <= r["ts"] < END and r["status"] == "ok"]
    acme = [r for r in window if r["tenant"] == "acme"]
    with_input = [r for r in acme if r["features"]]

    found = stored_inputs(store_engine, "ticket_classifier", START, END, RowScope(tenant="acme"))

    assert list(found.rows.columns) == list(STORED_INPUT_COLUMNS)
    assert list(found.rows["request_id"]) == [r["request_id"] for r in with_input]
    assert found.rows["features"].iloc[0] == with_input[0]["features"]
    assert found.without_inputs == len(acme) - len(with_input)
    limited = stored_inputs(store_engine, "ticket_classifier", START, END, limit=3)
    assert len(limited.rows) == 3
    assert set(stored_inputs(store_engine, "ticket_classifier", START, END).rows["tenant"]) == {
        r["tenant"] for r in window if r["features"]
    }


def test_version_rows_are_every_status_of_the_versions_in_the_scope(store_engine):
    from storage.prediction_samples import VERSION_ROW_COLUMNS, RowScope, version_rows

    rows = make_records(600, step_s=1.0)
    for i, r in enumerate(rows):
        r["region"] = ("eu", "us")[i % 2]
    write_predictions(store_engine, rows)
    scope = RowScope(endpoints=("classify_ticket",), tenant="acme", region="eu")
    expected = [
        r
        for r in rows
        if START <= r["ts"] < END
        and r["model_version"] == "v2"
        and (r["endpoint"], r["tenant"], r["region"]) == ("classify_ticket", "acme", "eu")
    ]

    found = version_rows(store_engine, "ticket_classifier", ["v2"], START, END, scope)

    assert list(found.columns) == list(VERSION_ROW_COLUMNS)
    assert Counter(found["status"]) == Counter(r["status"] for r in expected)
    assert "model_error" in set(found["status"])
    assert sorted(found["latency_ms"]) == pytest.approx(sorted(r["latency_ms"] for r in expected))
    both = version_rows(store_engine, "ticket_classifier", ["v1", "v2"], START, END)
    window = [r for r in rows if START <= r["ts"] < END]
    assert len(both) == len(window)
    capped = version_rows(store_engine, "ticket_classifier", ["v1", "v2"], START, END, max_rows=50)
    assert len(capped) == pytest.approx(50, rel=0.2)


def test_stored_inputs_of_one_version_in_a_scope(store_engine):
    from storage.prediction_samples import RowScope, stored_inputs

    rows = make_records(400, step_s=1.0)
    write_predictions(store_engine, rows)
    scope = RowScope(endpoints=("classify_tickets",))
    expected = [
        r["request_id"]
        for r in rows
        if START <= r["ts"] < END
        and r["status"] == "ok"
        and r["features"]
        and r["model_version"] == "v1"
        and r["endpoint"] == "classify_tickets"
    ]
    found = stored_inputs(store_engine, "ticket_classifier", START, END, scope, model_version="v1")
    assert expected
    assert list(found.rows["request_id"]) == expected
