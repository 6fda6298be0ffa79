"""Daily partitions of `predictions` on PostgreSQL (migration 0009); SQLite keeps one table.

`predictions` is partitioned by range of `ts`, one partition per UTC day (`predictions_pYYYYMMDD`),
plus the table a migrated store already had, attached for its whole past (`predictions_legacy`),
and a DEFAULT partition that catches any row no day partition covers. `request_id` stays unique
across partitions (DESIGN.md contract 1) through `prediction_request_ids`, which triggers keep in
step with `predictions` in the same statement (an insert that repeats a request id fails, whatever
its `ts`). Days are created ahead by the scheduler's tick and by the writer when a batch has a day
it does not know; a day whose rows went to the DEFAULT partition meanwhile is split out of it.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from psycopg.errors import InsufficientPrivilege
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from storage.engine import is_sqlite

log = logging.getLogger(__name__)

DAYS_AHEAD = 3  # days the scheduler's tick keeps ready beyond today
DEFAULT_PARTITION = "predictions_default"
LEGACY_PARTITION = "predictions_legacy"  # the table a migrated store had, attached for its past
REQUEST_IDS = "prediction_request_ids"
# A partition is created (and a default's rows moved) under locks that wait at most this long:
# the scheduler or the writer tries again later rather than queue every reader behind it.
LOCK_TIMEOUT = "5s"
_BOUND = re.compile(r"FROM \((MINVALUE|'[^']*')\) TO \((MAXVALUE|'[^']*')\)")


@dataclass(frozen=True, order=True)
class Partition:
    """One range partition of `predictions`: rows with lower <= ts < upper (None: unbounded)."""

    lower: datetime | None
    upper: datetime | None
    name: str


def day_name(day: date) -> str:
    return f"predictions_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def is_partitioned(connection: Connection) -> bool:
    """Whether `predictions` is a partitioned table here (PostgreSQL after migration 0009)."""
    return _kind(connection) == "p"


def _kind(connection: Connection) -> str | None:
    """`predictions`' relkind (None: SQLite, or no such table)."""
    if connection.dialect.name != "postgresql":
        return None
    kind = connection.exec_driver_sql(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass('predictions')"
    ).scalar()
    return None if kind is None else str(kind)


def partitions(connection: Connection) -> list[Partition]:
    """The range partitions of `predictions`, oldest first (the DEFAULT partition is not one)."""
    rows = connection.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'predictions'::regclass"
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is not None:  # not the DEFAULT partition
            found.append(Partition(_bound(match[1]), _bound(match[2]), name))
    return sorted(found, key=lambda p: (p.lower is not None, p.lower or datetime.min))


def _bound(text: str) -> datetime | None:
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(text.strip("'")).astimezone(UTC)


def covered_days(found: Iterable[Partition], days: Iterable[date]) -> set[date]:
    """The days among `days` whose whole range some partition covers."""
    spans = list(found)
    return {
        day
        for day in days
        if any(
            (p.lower is None or p.lower <= day_start(day))
            and (p.upper is None or day_start(day + timedelta(days=1)) <= p.upper)
            for p in spans
        )
    }


def ensure_days(connection: Connection, days: Iterable[date]) -> list[str]:
    """Create the partitions of `days` that no partition covers yet (moving their rows out of
    the DEFAULT partition where it holds some), in the caller's transaction; their names."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    # One creator at a time per table (this lock conflicts with itself, not with reads or
    # inserts); then each CREATE or ATTACH takes what it needs for a moment.
    connection.exec_driver_sql("LOCK TABLE predictions IN SHARE UPDATE EXCLUSIVE MODE")
    missing = [d for d in wanted if d not in covered_days(partitions(connection), [d])]
    for day in missing:
        _create_day(connection, day)
    return [day_name(d) for d in missing]


def _create_day(connection: Connection, day: date) -> None:
    name, lower, upper = day_name(day), day_start(day), day_start(day + timedelta(days=1))
    bounds = f"FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
    held = connection.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE ts >= %s AND ts < %s)",
        (lower, upper),
    ).scalar()
    if not held:
        connection.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF predictions FOR VALUES {bounds}"
        )
        return
    # Rows of that day sit in the DEFAULT partition: move them (ids, request ids and audit rows
    # unchanged: a statement on the partition itself fires none of the parent's triggers) into
    # a table that is then attached; attaching checks the default holds none of the day left.
    connection.exec_driver_sql(
        f"CREATE TABLE {name} (LIKE predictions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    connection.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= %s AND ts < %s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved",
        (lower, upper),
    )
    connection.exec_driver_sql(
        f"ALTER TABLE predictions ATTACH PARTITION {name} FOR VALUES {bounds}"
    )


def default_days(connection: Connection) -> list[date]:
    """The days of the rows the DEFAULT partition holds (normally none)."""
    rows = connection.exec_driver_sql(
        f"SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM {DEFAULT_PARTITION}"
    ).scalars()
    return sorted(rows)


def maintain(engine: Engine, now: datetime, days_ahead: int = DAYS_AHEAD) -> list[str]:
    """Create today's and the next `days_ahead` days' partitions, and split out of the DEFAULT
    partition the days it holds rows of (one transaction); the partitions created. A no-op on
    SQLite and on a store that is not partitioned."""
    if is_sqlite(engine):
        return []
    today = now.astimezone(UTC).date()
    with _transaction(engine) as connection:
        if not is_partitioned(connection):
            return []
        days = [today + timedelta(days=i) for i in range(days_ahead + 1)]
        created = ensure_days(connection, [*days, *default_days(connection)])
    _known(engine).days.clear()  # re-read at the writer's next batch
    return created


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction even on an autocommit engine (the prediction log's): the partition lock,
    `SET LOCAL` and moving a day's rows out of the DEFAULT partition need one."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="READ COMMITTED")
        with connection.begin():
            yield connection


@dataclass
class _Layout:
    """What a process knows of one store's partitions (the writer's cache)."""

    partitioned: bool | None = None
    days: set[date] = field(default_factory=set)
    can_create: bool = True


_LAYOUTS: weakref.WeakKeyDictionary[Engine, _Layout] = weakref.WeakKeyDictionary()


def _known(engine: Engine) -> _Layout:
    layout = _LAYOUTS.get(engine)
    if layout is None:
        layout = _LAYOUTS[engine] = _Layout()
    return layout


def layout_partitioned(engine: Engine, connection: Connection | None = None) -> bool:
    """Whether the store behind `engine` has a partitioned `predictions` (cached per engine)."""
    layout = _known(engine)
    if layout.partitioned is None:
        if connection is not None:
            kind = _kind(connection)
        else:
            with engine.connect() as fresh:
                kind = _kind(fresh)
        if kind is None and not is_sqlite(engine):
            return False  # not there (an outage, a rename): asked again next time
        layout.partitioned = kind == "p"
    return layout.partitioned


def days_between(first: datetime, last: datetime) -> list[date]:
    start, end = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def ensure_for_batch(
    engine: Engine, first: datetime, last: datetime, days_of: Callable[[], set[date]]
) -> None:
    """Before a batch whose times run first..last is written: create the partitions of its days
    (`days_of()`, asked only when a day in between is not known) that no partition covers. Rows
    of a day that cannot be created (no privilege, a lock not granted) go to the DEFAULT
    partition, which the scheduler's tick splits later."""
    layout = _known(engine)
    span = days_between(first, last)
    if all(d in layout.days for d in span):
        return
    with engine.connect() as connection:
        layout.days |= covered_days(partitions(connection), span)
    missing = {d for d in span if d not in layout.days}
    if missing:
        missing &= days_of()
    if not missing or not layout.can_create:
        return
    try:
        with _transaction(engine) as connection:
            ensure_days(connection, missing)
    except DBAPIError as exc:
        if isinstance(exc.orig, InsufficientPrivilege):
            layout.can_create = False  # the writer's role (SELECT, INSERT): the scheduler's job
        log.warning("cannot create the partitions of %s: %s", sorted(missing), exc.orig)
        return
    layout.days |= missing
