"""Daily partitions of `predictions` on PostgreSQL (storage.partitions, migration 0009): request
ids unique across partitions, late records, days created ahead and split out of the DEFAULT
partition, prunes that drop whole partitions only when the audit chain covers them, and the
migration of a filled table. SQLite keeps one table: the writer tests run on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, insert, select, text

from monitors.aggregate_source import RollupAggregates, SqlAggregates
from storage import rollups
from storage.audit import verify
from storage.engine import create_store_engine
from storage.log_engine import prediction_log_engine
from storage.migrate import alembic_config, upgrade
from storage.partitions import (
    DAYS_AHEAD,
    DEFAULT_PARTITION,
    LEGACY_PARTITION,
    day_name,
    maintain,
    partitions,
)
from storage.retention import plan_prune, prune
from storage.schema import audit_log, predictions
from storage.writer import write_predictions
from tests.conftest import POSTGRES_URL, require
from tests.storage.records import make_records
from tests.storage.test_rollups import assert_same
from tests.support.scratch import scratch_schema

NOW = datetime(2026, 12, 10, tzinfo=UTC)
PER_DAY = 40


def _day_start(day: int) -> datetime:
    return NOW - timedelta(days=6 - day)


def _count(engine: Engine, table: str = "predictions") -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _audited(engine: Engine) -> int:
    with engine.connect() as connection:
        statement = select(func.count()).where(audit_log.c.kind == "prediction")
        return int(connection.execute(statement).scalar_one())


def test_a_request_id_is_stored_once_whatever_its_time(store_engine):
    first = make_records(30, start=_day_start(0))
    assert write_predictions(store_engine, first) == 30
    # The same request ids three days later (another partition on PostgreSQL), with new ones.
    moved = make_records(30, start=_day_start(3))
    fresh = make_records(10, seed=8, start=_day_start(3))
    assert write_predictions(store_engine, moved) == 0
    assert write_predictions(store_engine, moved[:5] + fresh + fresh[:3]) == 10
    assert write_predictions(store_engine, fresh) == 0  # a replay

    assert _count(store_engine) == _audited(store_engine) == 40
    with store_engine.connect() as connection:
        stored = connection.execute(
            select(predictions.c.ts).where(predictions.c.request_id == first[0]["request_id"])
        ).scalar_one()
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == _day_start(0)
    assert verify(store_engine).ok


@pytest.fixture
def pg_engine(postgres_available) -> Iterator[Engine]:
    """A PostgreSQL store migrated to head, in a scratch schema."""
    require(postgres_available, "PostgreSQL is not reachable")
    with scratch_schema(POSTGRES_URL, prefix="t") as url:
        engine = create_store_engine(url)
        yield engine
        engine.dispose()


def _partition_of(engine: Engine, request_id: str) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT tableoid::regclass::text FROM predictions WHERE request_id = :r"),
                {"r": request_id},
            ).scalar_one()
        )


def test_a_late_record_goes_into_its_old_day_created_on_the_miss(pg_engine):
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    write_predictions(pg_engine, make_records(10, start=today))
    late = make_records(3, seed=9, start=today - timedelta(days=20))
    assert write_predictions(pg_engine, late) == 3

    old_day = (today - timedelta(days=20)).date()
    assert _partition_of(pg_engine, late[0]["request_id"]) == day_name(old_day)
    assert _count(pg_engine, DEFAULT_PARTITION) == 0
    assert write_predictions(pg_engine, late) == 0  # replayed into the old day: refused
    assert verify(pg_engine).ok


def test_days_are_created_ahead_and_rows_the_default_caught_are_split_out(pg_engine):
    stray_ts = NOW - timedelta(days=40, hours=-3)
    with pg_engine.begin() as connection:  # not through the writer: no day is created for it
        connection.execute(
            text(
                "INSERT INTO predictions (request_id, ts, tenant, endpoint, model_name, "
                "model_version, latency_ms, compute_ms, batch_size, status) "
                "VALUES ('stray', :ts, 'acme', 'e', 'm', 'v1', 1.0, 1.0, 1, 'ok')"
            ),
            {"ts": stray_ts},
        )
        stray_id = connection.execute(text("SELECT id FROM predictions")).scalar_one()
    assert _partition_of(pg_engine, "stray") == DEFAULT_PARTITION

    created = maintain(pg_engine, NOW)

    ahead = [day_name(NOW.date() + timedelta(days=i)) for i in range(DAYS_AHEAD + 1)]
    assert set(ahead) | {day_name(stray_ts.date())} == set(created)
    assert _partition_of(pg_engine, "stray") == day_name(stray_ts.date())
    with pg_engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM predictions")).scalar_one() == stray_id
    assert _count(pg_engine, DEFAULT_PARTITION) == 0
    assert maintain(pg_engine, NOW) == []  # nothing left to create
    moved = make_records(1)[0] | {"request_id": "stray", "ts": NOW}
    assert write_predictions(pg_engine, [moved]) == 0  # still known after the move


def _fill(engine: Engine, days: range) -> None:
    """One write (one audit block) a day, sealed when the day ends."""
    for day in days:
        records = make_records(PER_DAY, seed=day, start=_day_start(day), step_s=60.0)
        write_predictions(engine, records, now=_day_start(day + 1))


def _prune(engine: Engine, keep_days: float, batch_rows: int = 10_000):
    plan = plan_prune(engine, now=NOW, keep_days=keep_days)
    return prune(engine, plan, now=NOW, actor="ops", batch_rows=batch_rows)


def _request_ids(engine: Engine, table: str = "predictions") -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text(f"SELECT request_id FROM {table}")).scalars())


def test_a_prune_drops_the_partitions_its_blocks_cover_and_deletes_the_rest(pg_engine):
    _fill(pg_engine, range(5))  # blocks 1..5: days 0..4
    # A spill replayed late: a record of day 1 sealed in block 6, after day 4's.
    late = make_records(1, seed=99, start=_day_start(1) + timedelta(hours=12))
    write_predictions(pg_engine, late, now=_day_start(5))

    first = _prune(pg_engine, keep_days=2, batch_rows=7)  # blocks 1..4: days 0..3

    day = [day_name(_day_start(d).date()) for d in range(5)]
    assert {day[0], day[2], day[3]} <= set(first.dropped)
    assert day[1] not in first.dropped  # its late record's block is not pruned
    assert first.predictions == 4 * PER_DAY
    assert _request_ids(pg_engine) == {late[0]["request_id"]} | {
        r["request_id"] for r in make_records(PER_DAY, seed=4)
    }
    assert _request_ids(pg_engine, "prediction_request_ids") == _request_ids(pg_engine)
    assert verify(pg_engine).ok

    second = _prune(pg_engine, keep_days=1)  # blocks 5 and 6: day 1's partition goes too
    assert {day[1], day[4]} <= set(second.dropped)
    assert second.predictions == PER_DAY + 1
    assert _request_ids(pg_engine) == _request_ids(pg_engine, "prediction_request_ids") == set()
    result = verify(pg_engine)
    assert result.ok
    assert result.pruned is not None
    assert result.pruned.predictions == 5 * PER_DAY + 1
    with pg_engine.connect() as connection:
        names = {p.name for p in partitions(connection)}
    assert not names & set(day)


def _rows(engine: Engine) -> list[tuple[int, str, datetime]]:
    with engine.connect() as connection:
        statement = select(predictions.c.id, predictions.c.request_id, predictions.c.ts)
        return [tuple(row) for row in connection.execute(statement.order_by(predictions.c.id))]


def _indexes(engine: Engine, table: str) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = :t"
            ),
            {"t": table},
        )
        return {name: definition.split(" USING ")[1] for name, definition in rows}


def test_the_migration_converts_a_filled_table(postgres_available):
    require(postgres_available, "PostgreSQL is not reachable")
    with scratch_schema(POSTGRES_URL, prefix="t", revision="0008") as url:
        old = create_store_engine(url)
        _fill(old, range(3))
        write_predictions(old, make_records(5, seed=99, start=_day_start(0)), now=_day_start(3))
        rollups.fold_rollups(old, limit=50)  # the fold is part way through
        before = _rows(old)
        old.dispose()

        upgrade(url)
        engine = create_store_engine(url)
        try:
            assert _rows(engine) == before
            with engine.connect() as connection:
                found = partitions(connection)
            legacy = next(p for p in found if p.name == LEGACY_PARTITION)
            assert (legacy.lower, legacy.upper) == (None, _day_start(3))
            assert _request_ids(engine, "prediction_request_ids") == {r for _, r, _ in before}
            assert _indexes(engine, "predictions") == {
                "pk_predictions": "btree (id, ts)",
                "ix_predictions_ts": "btree (ts)",
                "ix_predictions_request_id": "btree (request_id)",
                "ix_predictions_client_request_id": "btree (client_request_id)",
            }
            assert sorted(_indexes(engine, LEGACY_PARTITION).values()) == sorted(
                _indexes(engine, "predictions").values()
            )
            # Old request ids stay unique under another time; new rows take ids above the old.
            moved = make_records(PER_DAY, seed=1, start=_day_start(5))
            assert write_predictions(engine, moved) == 0
            new = make_records(20, seed=50, start=_day_start(5))
            assert write_predictions(engine, new, now=_day_start(6)) == 20
            ids = [row[0] for row in _rows(engine)]
            assert ids[:-20] == [row[0] for row in before]
            assert min(ids[-20:]) > max(ids[:-20])
            assert _partition_of(engine, new[0]["request_id"]) == day_name(_day_start(5).date())

            # The fold goes on where it stopped: every row counted once.
            rollups.fold_pending(engine)
            raw, rolled = SqlAggregates(engine), RollupAggregates(engine)
            window = (_day_start(0), _day_start(6), None)
            assert_same(rolled.class_counts(*window), raw.class_counts(*window))
            assert_same(
                rolled.compute_totals(*window),
                raw.compute_totals(*window),
                values=("n", "requests", "compute_ms", "busy_ms"),
            )
            assert verify(engine).ok

            # The old table is a partition like the others: dropped once its blocks are pruned.
            result = _prune(engine, keep_days=2)
            assert LEGACY_PARTITION in result.dropped
            assert result.predictions == 3 * PER_DAY + 5
            assert verify(engine).ok

            kept = _rows(engine)
            command.downgrade(alembic_config(url), "0008")  # and back: one table again
            assert _rows(engine) == kept
            with engine.connect() as connection:
                kind = connection.execute(
                    text("SELECT relkind FROM pg_class WHERE oid = 'predictions'::regclass")
                ).scalar()
            assert kind == "r"
            fresh = create_store_engine(url)  # the writer's view of the store is per engine
            assert write_predictions(fresh, new) == 0
            fresh.dispose()
        finally:
            engine.dispose()


def test_db_prune_and_db_partitions_name_the_partitions(pg_engine, tmp_path):
    from typer.testing import CliRunner

    from servewatch.cli import app

    runner = CliRunner()
    url = pg_engine.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    old_days = [(now - timedelta(days=age)).replace(hour=1) for age in (40, 39)]
    for start in old_days:
        write_predictions(pg_engine, make_records(10, seed=start.day, start=start), now=start)
    names = [day_name(start.date()) for start in old_days]
    arguments = ["db", "prune", "--keep-days", "30", "--database-url", url]

    dry = runner.invoke(app, [*arguments, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would drop whole: {', '.join(names)}" in dry.output
    done = runner.invoke(app, arguments)
    assert done.exit_code == 0, done.output
    assert f"dropped whole: {', '.join(names)}" in done.output
    assert ": deleted 20 (audit blocks 1..2)" in done.output
    verified = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert "were pruned (20 rows, 1 prune)" in verified.output

    listed = runner.invoke(app, ["db", "partitions", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    assert f"{day_name(now.date())}: {now.date().isoformat()}T00:00:00+00:00" in listed.output
    assert not set(names) & set(listed.output.split())
    sqlite = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(sqlite)
    one = runner.invoke(app, ["db", "partitions", "--database-url", sqlite])
    assert "one table here" in one.output


def test_the_log_engine_splits_a_day_out_of_the_default_on_its_miss(pg_engine):
    stray = make_records(1, seed=5, start=NOW - timedelta(days=50))[0]
    with pg_engine.begin() as connection:  # the DEFAULT partition holds a row of that day
        connection.execute(insert(predictions), [stray])
    log_engine = prediction_log_engine(pg_engine.url.render_as_string(hide_password=False))
    try:  # autocommit: the split still runs in one transaction
        same_day = make_records(3, seed=6, start=NOW - timedelta(days=50, seconds=-60))
        assert write_predictions(log_engine, same_day) == 3
    finally:
        log_engine.dispose()
    day = day_name((NOW - timedelta(days=50)).date())
    assert {_partition_of(pg_engine, r["request_id"]) for r in [stray, *same_day]} == {day}
    assert _count(pg_engine, DEFAULT_PARTITION) == 0
