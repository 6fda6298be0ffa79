"""Last traffic per key and the registered versions, read from the store (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from core.stale import RegisteredVersion, Usage
from storage.model_versions import upsert_model_versions
from storage.usage import last_seen, registered_versions
from storage.writer import write_predictions
from tests.storage.records import T0, make_records


def test_last_seen_is_the_newest_prediction_of_each_key(store_engine):
    records = make_records(400, step_s=60.0)  # 400 minutes from T0
    for i, record in enumerate(records):
        record["region"] = "eu" if i % 2 else None
    write_predictions(store_engine, records, now=T0 + timedelta(days=1))
    expected: dict[tuple, object] = {}
    for r in records:
        key = (r["endpoint"], r["model_name"], r["model_version"], r["tenant"], r["region"])
        expected[key] = max(expected.get(key, r["ts"]), r["ts"])
    found = last_seen(store_engine)
    assert len(found) == len(expected) > 10
    assert {
        (u.endpoint, u.model_name, u.model_version, u.tenant, u.region): u.last_seen for u in found
    } == expected
    assert all(isinstance(u, Usage) and u.last_seen.tzinfo is not None for u in found)


def test_an_empty_store_has_no_usage(store_engine):
    assert last_seen(store_engine) == []


def test_registered_versions_carry_their_creation_time(store_engine):
    rows = [
        {
            "model_name": "risk_scorer",
            "model_version": version,
            "created_at": T0 + timedelta(days=n),
            "snapshot_id": "s" * 12,
            "preprocessing_version": "v1",
            "labels": {},
            "metadata": {},
        }
        for n, version in enumerate(("a", "b"))
    ]
    upsert_model_versions(store_engine, rows)
    assert sorted(registered_versions(store_engine), key=lambda v: v.model_version) == [
        RegisteredVersion("risk_scorer", "a", T0),
        RegisteredVersion("risk_scorer", "b", T0 + timedelta(days=1)),
    ]
