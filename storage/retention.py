"""Retention: drop old `predictions` and `monitor_results` rows in bounded batches.

Predictions go by whole sealed audit blocks (`storage.audit`): a prune takes the predictions of
the longest run of blocks, after the previous prune's, whose audit rows are all older than the
cutoff. A late record sealed after newer ones waits until the blocks before it are old too, so
`keep_days` is a minimum. The audit log and its blocks are kept; the prune is recorded there as
an event (`Prune`) before anything is deleted, so an interrupted prune is still accounted for,
and the next prune finishes its deletes first. Each batch is a transaction of its own: SQLite's
one writer (the service's prediction log) waits for at most one batch.

On a partitioned PostgreSQL store (`storage.partitions`) a day's partition older than the cutoff
is dropped whole instead, when every row in it belongs to a pruned block (its newest prediction's
audit row is in the pruned prefix: ids and audit ids grow together under the chain's lock); its
request ids leave `prediction_request_ids` in batches first. What cannot be dropped (a partition
holding a late record of a block not pruned, the DEFAULT partition) is deleted in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, text
from sqlalchemy.exc import DBAPIError

from core.contracts import AuditEvent
from core.timeutil import iso_utc, parse_time, to_utc
from storage.audit import PRUNE, Prune, append_in, lock_appends, prunes
from storage.partitions import LOCK_TIMEOUT, REQUEST_IDS, Partition, is_partitioned, partitions
from storage.schema import audit_blocks, audit_log, monitor_results, predictions

log = logging.getLogger(__name__)

BATCH_ROWS = 10_000  # rows a batch deletes at most (audit rows scanned, for predictions)

PrunedTable = Literal["predictions", "monitor_results"]
Progress = Callable[[PrunedTable, int], None]  # (table, rows deleted by the batch just done)

_a, _b, _p, _m = audit_log.c, audit_blocks.c, predictions.c, monitor_results.c


class RetentionError(ValueError):
    """A retention period that cannot be applied (not a positive number of days)."""


@dataclass(frozen=True)
class AuditedRange:
    """Predictions to delete: those the audit rows first_id..last_id record, older than
    `before`; `rows` of them were stored when the plan was made."""

    first_id: int
    last_id: int
    before: datetime
    rows: int


@dataclass(frozen=True)
class DroppablePartition:
    """A partition of `predictions` a prune drops whole: older than its cutoff, every row in
    it in a pruned block; `rows` of them when the plan was made."""

    partition: Partition
    rows: int

    @property
    def name(self) -> str:
        return self.partition.name


@dataclass(frozen=True)
class PrunePlan:
    """What a prune would do: its audit event's contents, and the audited ranges whose
    predictions it deletes (an interrupted prune's first, then its own blocks')."""

    prune: Prune
    ranges: tuple[AuditedRange, ...]
    predictions_before: datetime | None  # None: predictions are kept
    monitor_results_before: datetime | None
    partitions: tuple[DroppablePartition, ...] = ()  # dropped whole (PostgreSQL, partitioned)

    @property
    def predictions(self) -> int:
        """Predictions to delete, an interrupted prune's leftovers included."""
        return sum(r.rows for r in self.ranges)

    @property
    def empty(self) -> bool:
        return not (self.predictions or self.recorded)

    @property
    def recorded(self) -> bool:
        """Whether it gets an audit event: it takes new blocks or deletes monitor results
        (finishing an interrupted prune does not: that prune's event counts its rows)."""
        return self.prune.last_block is not None or self.prune.monitor_results > 0


@dataclass(frozen=True)
class PruneResult:
    """What a prune deleted, per table, and whether it got through its plan (one stopped
    between batches is finished by the next prune)."""

    predictions: int
    monitor_results: int
    plan: PrunePlan
    finished: bool = True
    dropped: tuple[str, ...] = ()  # partitions dropped whole (their rows count in predictions)


def cutoff(now: datetime, keep_days: float | None) -> datetime | None:
    """The time before which rows kept `keep_days` days are dropped (None: kept forever)."""
    if keep_days is None:
        return None
    if not keep_days > 0:
        raise RetentionError(f"a retention period must be a positive number of days: {keep_days}")
    return to_utc(now) - timedelta(days=keep_days)


def plan_prune(
    engine: Engine,
    *,
    now: datetime,
    keep_days: float | None,
    monitor_results_keep_days: float | None = None,
) -> PrunePlan:
    """What pruning predictions older than `keep_days` and monitor results whose window ended
    more than `monitor_results_keep_days` ago would delete (None keeps that table)."""
    if keep_days is None and monitor_results_keep_days is None:
        raise RetentionError("no retention given: every table would be kept")
    predictions_before = cutoff(now, keep_days)
    results_before = cutoff(now, monitor_results_keep_days)
    with engine.connect() as connection:
        return _plan(connection, predictions_before, results_before)


def prune(
    engine: Engine,
    plan: PrunePlan,
    *,
    now: datetime,
    actor: str,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> PruneResult:
    """Record `plan` in the audit log, then delete its rows in batches of `batch_rows`, while
    `keep_going()` says so before each batch. Another prune recorded since the plan was made
    makes it plan again (never two prunes of a block)."""
    if batch_rows < 1:
        raise RetentionError(f"a batch deletes at least one row, not {batch_rows}")
    if plan.empty:
        return PruneResult(0, 0, plan)
    plan = _record(engine, plan, now=now, actor=actor)
    batches = _Batches(engine, batch_rows, progress or (lambda _table, _rows: None), keep_going)
    # The next prune tells an unfinished prune by its range's last audited prediction still
    # being stored (`_unfinished`): a partition holding one is dropped after the batches.
    last = _holding_last(engine, plan.ranges)
    dropped = [p for p in plan.partitions if p.name not in last and batches.drop(p)]
    after = [p for p in plan.partitions if p.name in last]
    skipped = [p.partition for p in after]
    deleted = sum(
        batches.predictions(r, skipped) for r in plan.ranges if _any_older(engine, r.before)
    )
    dropped += [p for p in after if batches.drop(p)]
    deleted += sum(p.rows for p in dropped)
    results = batches.monitor_results(plan.monitor_results_before)
    names = tuple(p.name for p in dropped)
    finished = not batches.stopped and all(p in dropped for p in after)
    return PruneResult(deleted, results, plan, finished=finished, dropped=names)


def _holding_last(engine: Engine, ranges: Sequence[AuditedRange]) -> set[str]:
    """The partitions (PostgreSQL) holding the last audited prediction of each range."""
    if engine.dialect.name != "postgresql" or not ranges:
        return set()
    holding = set()
    with engine.connect() as connection:
        for r in ranges:
            statement = (
                select(text("tableoid::regclass::text"))
                .select_from(predictions)
                .where(_p.request_id == _last_audited(r.first_id, r.last_id))
            )
            name = connection.execute(statement).scalar()
            if name is not None:
                holding.add(str(name))
    return holding


def _last_audited(first_id: int, last_id: int) -> Any:
    """The request id of the last prediction among the audit rows first_id..last_id."""
    return (
        select(_a.request_id)
        .where(_a.kind == "prediction", _a.id >= first_id, _a.id <= last_id)
        .order_by(_a.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _any_older(engine: Engine, before: datetime) -> bool:
    """Whether any prediction older than `before` is left (after partitions were dropped, the
    batches of a range would find nothing: they are skipped)."""
    with engine.connect() as connection:
        statement = select(_p.id).where(_p.ts < to_utc(before)).limit(1)
        return connection.execute(statement).first() is not None


def _plan(
    connection: Connection, predictions_before: datetime | None, results_before: datetime | None
) -> PrunePlan:
    recorded = prunes(connection)
    blocks = (
        None
        if predictions_before is None
        else _prunable_blocks(connection, recorded, predictions_before)
    )
    first, last = blocks if blocks else (None, None)
    ranges = _unfinished(connection, recorded)
    if first is not None and last is not None and predictions_before is not None:
        ranges.append(_range(connection, first["first_id"], last["last_id"], predictions_before))
    pruned_to = max(
        [p.last_id for p in recorded if p.last_id is not None]
        + [0 if last is None else int(last["last_id"])]
    )
    droppable = (
        _droppable(connection, predictions_before, pruned_to)
        if predictions_before is not None and is_partitioned(connection)
        else ()
    )
    prune = Prune(
        first_block=None if first is None else int(first["id"]),
        last_block=None if last is None else int(last["id"]),
        first_block_hash=None if first is None else str(first["block_hash"]),
        last_block_hash=None if last is None else str(last["block_hash"]),
        last_id=None if last is None else int(last["last_id"]),
        predictions_before=None if predictions_before is None else iso_utc(predictions_before),
        monitor_results_before=None if results_before is None else iso_utc(results_before),
        predictions=ranges[-1].rows if first is not None else 0,
        monitor_results=_count_monitor_results(connection, results_before),
    )
    return PrunePlan(prune, tuple(ranges), predictions_before, results_before, droppable)


def _droppable(
    connection: Connection, before: datetime, pruned_to: int
) -> tuple[DroppablePartition, ...]:
    """The partitions wholly older than `before` whose rows all have their audit rows at or
    below `pruned_to` (the pruned prefix of the chain, this prune's blocks included)."""
    found = []
    for partition in partitions(connection):
        if partition.upper is None or partition.upper > before:
            continue
        if _covered(connection, partition.name, pruned_to):
            rows = connection.exec_driver_sql(f"SELECT count(*) FROM {partition.name}").scalar()
            found.append(DroppablePartition(partition, int(rows or 0)))
    return tuple(found)


def _covered(connection: Connection, name: str, pruned_to: int) -> bool:
    """Whether the newest prediction of partition `name` (none: covered) has its audit row at or
    below `pruned_to`. Writers take ids and write audit rows in id order under the chain's lock,
    so every older row of the partition has an audit row below it too."""
    newest = connection.exec_driver_sql(
        f"SELECT request_id FROM {name} ORDER BY id DESC LIMIT 1"
    ).scalar()
    if newest is None:
        return True
    audited = connection.execute(
        select(func.max(_a.id)).where(_a.kind == "prediction", _a.request_id == newest)
    ).scalar()
    return audited is not None and audited <= pruned_to


def _prunable_blocks(
    connection: Connection, recorded: Sequence[Prune], before: datetime
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The first and last of the blocks after the previous prune's whose audit rows are all
    older than `before`, up to the first block holding a newer row (None if there are none)."""
    after_block = max((p.last_block for p in recorded if p.last_block is not None), default=0)
    first = connection.execute(
        select(_b.id, _b.first_id, _b.block_hash).where(_b.id > after_block).order_by(_b.id)
    ).first()
    if first is None:
        return None
    newer = connection.execute(
        select(_a.id)
        .where(_a.id >= first.first_id, _a.ts >= to_utc(before))
        .order_by(_a.id)
        .limit(1)
    ).scalar_one_or_none()
    last_statement = select(_b.id, _b.last_id, _b.block_hash).where(_b.id >= first.id)
    if newer is not None:
        last_statement = last_statement.where(_b.last_id < newer)
    last = connection.execute(last_statement.order_by(_b.id.desc()).limit(1)).first()
    if last is None:
        return None
    return dict(first._mapping), dict(last._mapping)


def _unfinished(connection: Connection, recorded: Sequence[Prune]) -> list[AuditedRange]:
    """The ranges of recorded prunes whose deletes were interrupted, oldest first. Deletes go
    in audit order, so a prune whose last audited prediction is gone finished, and so did every
    prune before it: the walk back stops there."""
    pending: list[AuditedRange] = []
    for done in reversed(recorded):
        if done.first_block is None or done.last_id is None or done.predictions_before is None:
            continue  # it pruned monitor results only
        first_id = connection.execute(
            select(_b.first_id).where(_b.id == done.first_block)
        ).scalar_one()
        if not _last_still_stored(connection, first_id, done.last_id):
            break
        before = parse_time(done.predictions_before)
        pending.append(_range(connection, first_id, done.last_id, before))
    return pending[::-1]


def _last_still_stored(connection: Connection, first_id: int, last_id: int) -> bool:
    """Whether the prediction the last prediction row of audit rows first_id..last_id records
    is still stored."""
    stored = select(_p.id).where(_p.request_id == _last_audited(first_id, last_id)).limit(1)
    return connection.execute(stored).first() is not None


def _range(connection: Connection, first_id: int, last_id: int, before: datetime) -> AuditedRange:
    statement = select(func.count()).where(_in_range(first_id, last_id, before))
    rows = int(connection.execute(statement).scalar_one())
    return AuditedRange(int(first_id), int(last_id), before, rows)


def _in_range(first_id: int, last_id: int, before: datetime) -> Any:
    """The condition on `predictions`: recorded by the audit rows first_id..last_id, older
    than `before` (a guard: never a row newer than the cutoff, whatever its audit row says)."""
    audited = select(_a.request_id).where(
        _a.kind == "prediction", _a.id >= first_id, _a.id <= last_id
    )
    return _p.request_id.in_(audited.scalar_subquery()) & (_p.ts < to_utc(before))


def _count_monitor_results(connection: Connection, before: datetime | None) -> int:
    if before is None:
        return 0
    statement = select(func.count()).where(_m.window_end < to_utc(before))
    return int(connection.execute(statement).scalar_one())


def _record(engine: Engine, plan: PrunePlan, *, now: datetime, actor: str) -> PrunePlan:
    """Append the plan's audit event (if it gets one); the plan, made again first if another
    prune was recorded since it was made."""
    with engine.begin() as connection:
        lock_appends(connection)  # no other prune (nor append) between the check and the event
        if _stale(connection, plan):
            plan = _plan(connection, plan.predictions_before, plan.monitor_results_before)
        if plan.recorded:
            event = AuditEvent(kind=PRUNE, ts=now, actor=actor, details=asdict(plan.prune))
            append_in(connection, [event], now=now)
    return plan


def _stale(connection: Connection, plan: PrunePlan) -> bool:
    """Whether a prune recorded since `plan` was made took some of its blocks."""
    if plan.prune.first_block is None:
        return False
    done = [p.last_block for p in prunes(connection) if p.last_block is not None]
    return max(done, default=0) >= plan.prune.first_block


@dataclass
class _Batches:
    """Deletes in transactions of `rows` rows, reporting each, until `keep_going()` says no."""

    engine: Engine
    rows: int
    report: Progress
    keep_going: Callable[[], bool]
    stopped: bool = False

    def predictions(self, audited: AuditedRange, skipped: Sequence[Partition] = ()) -> int:
        """Delete the predictions of `audited`, `rows` audit rows' worth per transaction, but
        those of the `skipped` partitions (dropped whole afterwards)."""
        outside = [
            or_(_p.ts >= to_utc(p.upper), *([_p.ts < to_utc(p.lower)] if p.lower else []))
            for p in skipped
            if p.upper is not None
        ]
        deleted, low = 0, self._next_audit_id(audited.first_id, audited.last_id)
        while low is not None and not self.stopped:
            high = min(low + self.rows - 1, audited.last_id)
            condition = and_(_in_range(low, high, audited.before), *outside)
            deleted += self._batch("predictions", delete(predictions).where(condition))
            low = self._next_audit_id(high + 1, audited.last_id)
        return deleted

    def _next_audit_id(self, low: int, last: int) -> int | None:
        """The first audit id from `low` to `last`: a gap in the ids (a rolled back append, a
        sequence moved on) costs one look-up, not a transaction per `rows` ids."""
        if low > last:
            return None
        statement = select(func.min(_a.id)).where(_a.id >= low, _a.id <= last)
        with self.engine.connect() as connection:
            found = connection.execute(statement).scalar()
        return None if found is None else int(found)

    def drop(self, droppable: DroppablePartition) -> bool:
        """Drop a partition: its request ids leave `prediction_request_ids` in batches (own
        transactions), then, under the chain's lock with its coverage checked again (a late
        record may have come in), the table itself; whether it was dropped."""
        partition = droppable.partition
        assert partition.upper is not None  # only partitions older than a cutoff are dropped
        bounds = {"upper": to_utc(partition.upper), "rows": self.rows}
        lower = ""
        if partition.lower is not None:
            bounds["lower"], lower = to_utc(partition.lower), " AND ts >= :lower"
        # By physical row (a TID scan): no second look-up of each key, as `IN (keys)` takes.
        statement = text(
            f"DELETE FROM {REQUEST_IDS} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {REQUEST_IDS} "
            f"WHERE ts < :upper{lower} LIMIT :rows))"
        ).bindparams(**bounds)
        while not self.stopped:
            if self._batch(None, statement) < self.rows:
                break
        if self.stopped or not self.keep_going():
            self.stopped = True
            return False
        try:
            with self.engine.begin() as connection:
                lock_appends(connection)  # no write into it between the check and the drop
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                pruned_to = max((p.last_id or 0 for p in prunes(connection)), default=0)
                if not _covered(connection, partition.name, pruned_to):
                    return False  # a late record came in: its rows go in batches
                connection.exec_driver_sql(f"DROP TABLE {partition.name}")
        except DBAPIError as exc:  # a lock not granted in time, a role that does not own it
            log.warning("%s not dropped (%s): deleted in batches", partition.name, exc.orig)
            return False
        if droppable.rows:
            self.report("predictions", droppable.rows)
        return True

    def monitor_results(self, before: datetime | None) -> int:
        """Delete the monitor results whose window ended before `before`, oldest ids first."""
        if before is None:
            return 0
        oldest = select(_m.id).where(_m.window_end < to_utc(before)).order_by(_m.id)
        statement = delete(monitor_results).where(
            _m.id.in_(oldest.limit(self.rows).scalar_subquery())
        )
        deleted = 0
        while True:
            rows = self._batch("monitor_results", statement)
            deleted += rows
            if rows < self.rows:
                return deleted

    def _batch(self, table: PrunedTable | None, statement: Any) -> int:
        """One transaction; reported under `table` (None: not a table the progress shows)."""
        if self.stopped or not self.keep_going():
            self.stopped = True
            return 0
        with self.engine.begin() as connection:
            rows = int(connection.execute(statement).rowcount)
        if table is not None:
            self.report(table, rows)
        return rows
