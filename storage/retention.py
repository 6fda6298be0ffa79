"""Retention: drop old `predictions` and `monitor_results` rows in bounded batches.

Predictions go by whole sealed audit blocks (`storage.audit`): a prune takes the predictions of
the longest run of blocks, after the previous prune's, whose audit rows are all older than the
cutoff. A late record sealed after newer ones waits until the blocks before it are old too, so
`keep_days` is a minimum. The audit log and its blocks are kept; the prune is recorded there as
an event (`Prune`) before anything is deleted, so an interrupted prune is still accounted for
and a re-run finishes it. Each batch is a transaction of its own: SQLite's one writer (the
service's prediction log) waits for at most one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, func, select

from core.contracts import AuditEvent
from core.timeutil import iso_utc, to_utc
from storage.audit import PRUNE, Prune, append_in, lock_appends, prunes
from storage.schema import audit_blocks, audit_log, monitor_results, predictions

BATCH_ROWS = 10_000  # rows a batch deletes at most (audit rows scanned, for predictions)

PrunedTable = Literal["predictions", "monitor_results"]
Progress = Callable[[PrunedTable, int], None]  # (table, rows deleted by the batch just done)

_a, _b, _p, _m = audit_log.c, audit_blocks.c, predictions.c, monitor_results.c


class RetentionError(ValueError):
    """A retention period that cannot be applied (not a positive number of days)."""


@dataclass(frozen=True)
class PrunePlan:
    """What a prune would do: its audit event's contents and the audit rows it scans."""

    prune: Prune
    first_id: int | None  # the first audit row of prune.first_block
    predictions_before: datetime | None  # None: predictions are kept
    monitor_results_before: datetime | None

    @property
    def empty(self) -> bool:
        return not (self.prune.predictions or self.prune.monitor_results or self.advances)

    @property
    def advances(self) -> bool:
        """Whether it takes blocks past the previous prune's (even ones with no rows left)."""
        return self.prune.last_block is not None


@dataclass(frozen=True)
class PruneResult:
    """What a prune deleted, per table."""

    predictions: int
    monitor_results: int
    plan: PrunePlan


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
) -> PruneResult:
    """Record `plan` in the audit log, then delete its rows in batches of `batch_rows`. Another
    prune recorded since the plan was made makes it plan again (never two prunes of a block)."""
    if batch_rows < 1:
        raise RetentionError(f"a batch deletes at least one row, not {batch_rows}")
    if plan.empty:
        return PruneResult(0, 0, plan)
    plan = _record(engine, plan, now=now, actor=actor)
    if plan.empty:
        return PruneResult(0, 0, plan)
    report = progress or (lambda _table, _rows: None)
    deleted = _delete_predictions(engine, plan, batch_rows, report)
    results = _delete_monitor_results(engine, plan.monitor_results_before, batch_rows, report)
    return PruneResult(deleted, results, plan)


def _plan(
    connection: Connection, predictions_before: datetime | None, results_before: datetime | None
) -> PrunePlan:
    blocks = (
        None if predictions_before is None else _prunable_blocks(connection, predictions_before)
    )
    first, last = blocks if blocks else (None, None)
    first_id = None if first is None else int(first["first_id"])
    last_id = None if last is None else int(last["last_id"])
    prune = Prune(
        first_block=None if first is None else int(first["id"]),
        last_block=None if last is None else int(last["id"]),
        first_block_hash=None if first is None else str(first["block_hash"]),
        last_block_hash=None if last is None else str(last["block_hash"]),
        last_id=last_id,
        predictions_before=None if predictions_before is None else iso_utc(predictions_before),
        monitor_results_before=None if results_before is None else iso_utc(results_before),
        predictions=_count_predictions(connection, first_id, last_id, predictions_before),
        monitor_results=_count_monitor_results(connection, results_before),
    )
    return PrunePlan(prune, first_id, predictions_before, results_before)


def _prunable_blocks(
    connection: Connection, before: datetime
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The first and last of the blocks after the previous prune's whose audit rows are all
    older than `before`, up to the first block holding a newer row (None if there are none)."""
    done = [p.last_block for p in prunes(connection) if p.last_block is not None]
    after_block = max(done, default=0)
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


def _in_blocks(first_id: int, last_id: int, before: datetime) -> Any:
    """The condition on `predictions`: audited by the rows first_id..last_id, older than
    `before` (a guard: never a row newer than the cutoff, whatever its audit row says)."""
    audited = select(_a.request_id).where(
        _a.kind == "prediction", _a.id >= first_id, _a.id <= last_id
    )
    return _p.request_id.in_(audited.scalar_subquery()) & (_p.ts < to_utc(before))


def _count_predictions(
    connection: Connection, first_id: int | None, last_id: int | None, before: datetime | None
) -> int:
    if first_id is None or last_id is None or before is None:
        return 0
    statement = select(func.count()).where(_in_blocks(first_id, last_id, before))
    return int(connection.execute(statement).scalar_one())


def _count_monitor_results(connection: Connection, before: datetime | None) -> int:
    if before is None:
        return 0
    statement = select(func.count()).where(_m.window_end < to_utc(before))
    return int(connection.execute(statement).scalar_one())


def _record(engine: Engine, plan: PrunePlan, *, now: datetime, actor: str) -> PrunePlan:
    """Append the plan's audit event (none for an empty plan); the plan, made again first if
    another prune was recorded since it was made."""
    with engine.begin() as connection:
        lock_appends(connection)  # no other prune (nor append) between the check and the event
        if _stale(connection, plan):
            plan = _plan(connection, plan.predictions_before, plan.monitor_results_before)
        if not plan.empty:
            event = AuditEvent(kind=PRUNE, ts=now, actor=actor, details=asdict(plan.prune))
            append_in(connection, [event], now=now)
    return plan


def _stale(connection: Connection, plan: PrunePlan) -> bool:
    """Whether a prune recorded since `plan` was made took some of its blocks."""
    if not plan.advances:
        return False
    done = [p.last_block for p in prunes(connection) if p.last_block is not None]
    return max(done, default=0) >= (plan.prune.first_block or 0)


def _delete_predictions(engine: Engine, plan: PrunePlan, batch_rows: int, report: Progress) -> int:
    """Delete the plan's predictions, `batch_rows` audit rows' worth per transaction."""
    before, first_id, last_id = plan.predictions_before, plan.first_id, plan.prune.last_id
    if before is None or first_id is None or last_id is None:
        return 0
    deleted = 0
    for low in range(first_id, last_id + 1, batch_rows):
        high = min(low + batch_rows - 1, last_id)
        with engine.begin() as connection:
            statement = delete(predictions).where(_in_blocks(low, high, before))
            rows = connection.execute(statement).rowcount
        deleted += rows
        report("predictions", rows)
    return deleted


def _delete_monitor_results(
    engine: Engine, before: datetime | None, batch_rows: int, report: Progress
) -> int:
    """Delete the monitor results whose window ended before `before`, `batch_rows` a batch."""
    if before is None:
        return 0
    deleted = 0
    while True:
        oldest = (
            select(_m.id).where(_m.window_end < to_utc(before)).order_by(_m.id).limit(batch_rows)
        )
        with engine.begin() as connection:
            statement = delete(monitor_results).where(_m.id.in_(oldest.scalar_subquery()))
            rows = connection.execute(statement).rowcount
        deleted += rows
        report("monitor_results", rows)
        if rows < batch_rows:
            return deleted
