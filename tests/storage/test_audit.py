"""The audit log: appends sealed in blocks, triggers that refuse changes, and a verification
that names the first block where a row was changed, deleted, inserted or reordered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from core.contracts import AUDIT_FIELDS, AuditEvent
from storage.audit import append, verify
from storage.schema import audit_log
from storage.schema import predictions as predictions_table

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _prediction(i: int, tenant: str = "acme") -> AuditEvent:
    return AuditEvent(
        kind="prediction",
        ts=NOW + timedelta(seconds=i),
        request_id=f"req-{i:04d}",
        tenant=tenant,
        endpoint="classify_ticket",
        model_name="ticket_classifier",
        model_version="v1",
        decision="billing",
        confidence=0.8 + i / 1000,
        input_hmac=f"{i:064x}",
    )


def _fill(engine: Engine, blocks: int = 3, per_block: int = 4) -> None:
    for b in range(blocks):
        events = [_prediction(b * per_block + i) for i in range(per_block)]
        append(engine, events, now=NOW + timedelta(minutes=b))


@contextmanager
def _tampering(engine: Engine) -> Iterator[Connection]:
    """A connection of someone who got past the triggers (they disable or drop them)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            connection.execute(text("ALTER TABLE audit_blocks DISABLE TRIGGER USER"))
        else:
            for name in ("update", "delete"):
                connection.execute(text(f"DROP TRIGGER audit_log_no_{name}"))
                connection.execute(text(f"DROP TRIGGER audit_blocks_no_{name}"))
        yield connection


def test_the_event_fields_are_the_table_columns():
    assert tuple(c.name for c in audit_log.columns if c.name != "id") == AUDIT_FIELDS


def test_appends_are_sealed_and_the_chain_verifies(store_engine):
    _fill(store_engine)
    result = verify(store_engine)
    assert result.ok
    assert (result.blocks, result.rows) == (3, 12)


def test_an_empty_log_verifies(store_engine):
    assert verify(store_engine).ok


def test_release_actions_carry_who_and_the_verdicts(store_engine):
    action = AuditEvent(
        kind="rollback",
        ts=NOW,
        model_name="ticket_classifier",
        model_version="v2",
        actor="oncall@example.com",
        details={"gates": {"confidence_drift": "alert"}},
    )
    append(store_engine, [action], now=NOW)
    assert verify(store_engine).ok


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET decision = 'x'", "DELETE FROM audit_log"]
)
def test_triggers_refuse_updates_and_deletes(store_engine, statement):
    _fill(store_engine, blocks=1)
    with pytest.raises(DBAPIError, match="append-only"), store_engine.begin() as connection:
        connection.execute(text(statement))
    assert verify(store_engine).ok


def test_blocks_are_append_only_too(store_engine):
    _fill(store_engine, blocks=1)
    with pytest.raises(DBAPIError, match="append-only"), store_engine.begin() as connection:
        connection.execute(text("UPDATE audit_blocks SET rows_hash = 'x'"))


def _ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT id FROM audit_log ORDER BY id"))]


def test_a_changed_row_breaks_its_block(store_engine):
    _fill(store_engine)
    target = _ids(store_engine)[5]  # in the second block
    with _tampering(store_engine) as connection:
        connection.execute(
            text("UPDATE audit_log SET decision = 'shipping' WHERE id = :id"), {"id": target}
        )
    result = verify(store_engine)
    assert result.broken_block == 2
    assert "changed" in (result.reason or "")


def test_a_deleted_row_breaks_its_block(store_engine):
    _fill(store_engine)
    target = _ids(store_engine)[9]  # in the third block
    with _tampering(store_engine) as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": target})
    result = verify(store_engine)
    assert result.broken_block == 3
    assert "sealed 4 rows, 3 are there" in (result.reason or "")


def test_reordered_rows_break_their_block(store_engine):
    _fill(store_engine)
    first, second = _ids(store_engine)[0:2]
    with _tampering(store_engine) as connection:
        for a, b in ((first, -1), (second, first), (-1, second)):
            connection.execute(text("UPDATE audit_log SET id = :b WHERE id = :a"), {"a": a, "b": b})
    assert verify(store_engine).broken_block == 1


def test_a_row_slipped_in_after_the_last_block_is_found(store_engine):
    _fill(store_engine)
    with store_engine.begin() as connection:  # INSERT is allowed: it must not go unnoticed
        connection.execute(
            audit_log.insert().values(kind="prediction", ts=NOW, request_id="forged")
        )
    result = verify(store_engine)
    assert not result.ok
    assert "1 rows after the last block" in (result.reason or "")


def test_a_rewritten_block_breaks_the_next_one(store_engine):
    _fill(store_engine)
    with _tampering(store_engine) as connection:
        connection.execute(
            text("UPDATE audit_blocks SET block_hash = :h WHERE id = 1"), {"h": "f" * 64}
        )
    assert verify(store_engine).broken_block == 1


def test_since_starts_at_the_first_block_sealed_then(store_engine):
    _fill(store_engine)
    target = _ids(store_engine)[1]  # in the first block, before `since`
    with _tampering(store_engine) as connection:
        connection.execute(
            text("UPDATE audit_log SET decision = 'shipping' WHERE id = :id"), {"id": target}
        )
    assert verify(store_engine, since=NOW + timedelta(minutes=1)).ok
    assert verify(store_engine).broken_block == 1


def test_concurrent_appenders_keep_one_chain(store_engine):
    def writer(offset: int) -> None:
        for b in range(5):
            events = [_prediction(offset + b * 3 + i) for i in range(3)]
            append(store_engine, events, now=NOW)

    threads = [threading.Thread(target=writer, args=(1000 * k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    result = verify(store_engine)
    assert result.ok
    assert (result.blocks, result.rows) == (15, 45)


def test_verifying_while_blocks_are_appended_finds_nothing_wrong(store_engine):
    """A live store is verified while its writer appends: rows sealed after verification began
    are the next one's, never strays (the writer's commits land between its reads)."""

    def writer() -> None:
        for i in range(0, 400, 2):
            append(store_engine, [_prediction(i), _prediction(i + 1)], now=NOW)

    appending = threading.Thread(target=writer)
    appending.start()
    problems = []
    while appending.is_alive():
        problems.append(verify(store_engine).reason)
    appending.join()
    assert len(problems) > 1
    assert [p for p in problems if p is not None] == []
    assert verify(store_engine).ok


def test_every_stored_prediction_is_audited_once_in_the_same_transaction(store_engine):
    from storage.writer import write_predictions
    from tests.storage.records import make_records

    first = make_records(30)
    assert write_predictions(store_engine, first, now=NOW) == 30
    replay = [*first[10:20], *make_records(5, seed=8)]  # ten known ids, five new ones
    assert write_predictions(store_engine, replay, now=NOW) == 5
    with store_engine.connect() as connection:
        audited = connection.execute(
            text("SELECT request_id, decision FROM audit_log ORDER BY id")
        ).all()
        stored = connection.execute(
            text("SELECT request_id, predicted_class FROM predictions ORDER BY id")
        ).all()
    assert audited == stored
    result = verify(store_engine)
    assert result.ok
    assert (result.blocks, result.rows) == (2, 35)


def test_a_changed_decision_in_predictions_is_found(store_engine):
    """`UPDATE predictions SET predicted_class = ..., model_version = ...` no longer goes unseen."""
    from storage.writer import write_predictions
    from tests.storage.records import make_records

    records = make_records(10)
    write_predictions(store_engine, records, now=NOW)
    assert verify(store_engine).ok
    target = next(r["request_id"] for r in records if r["status"] == "ok")
    with store_engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE predictions SET predicted_class = 'forged', model_version = 'forged' "
                "WHERE request_id = :r"
            ),
            {"r": target},
        )
    result = verify(store_engine)
    assert not result.ok
    assert target in (result.reason or "")


def test_a_prediction_written_around_the_log_is_found(store_engine):
    from storage.writer import write_predictions
    from tests.storage.records import make_records

    write_predictions(store_engine, make_records(3), now=NOW)
    forged = dict(make_records(1, seed=9)[0], request_id="forged-row")
    with store_engine.begin() as connection:
        connection.execute(predictions_table.insert().values(**forged))
    assert "forged-row" in (verify(store_engine).reason or "")
