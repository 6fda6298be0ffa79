"""The `rollouts` table: canary state that every worker polls, changed only with an audit event.

A rollout moves a share (`weight`, percent) of the traffic a baseline version serves on some
endpoints to a candidate version, step by step. States: `active` (stepping), `promoted` (at
the last step, 100 %, still in force), and the ends `aborted`, `rolled_back` (a promoted one
undone) and `superseded` (a later rollout of its endpoints took over). Every change is written
in the same transaction as its audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

from sqlalchemy import Connection, Engine, RowMapping, false, insert, select, update

from core.contracts import AuditEvent, AuditKind
from core.timeutil import to_utc
from storage.audit import append_in, lock_appends
from storage.engine import sqlite_file, sqlite_file_exists
from storage.schema import rollouts

RolloutMode = Literal["hash", "sticky"]
ROLLOUT_MODES: tuple[RolloutMode, ...] = ("hash", "sticky")
IN_FORCE = ("active", "promoted")  # the states whose weights the workers apply
DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)

_c = rollouts.c


class RolloutError(Exception):
    """A rollout change that the state does not allow (a conflict, a wrong state, bad steps)."""


@dataclass(frozen=True)
class Rollout:
    """One stored rollout."""

    id: int
    endpoints: tuple[str, ...]
    candidate_model: str
    candidate_version: str
    baseline_model: str
    baseline_version: str
    steps: tuple[float, ...]
    step_index: int
    weight: float
    tenant: str | None
    region: str | None
    mode: RolloutMode
    state: str
    started_at: datetime
    updated_at: datetime
    actor: str

    @property
    def candidate(self) -> str:
        return f"{self.candidate_model}:{self.candidate_version}"

    @property
    def baseline(self) -> str:
        return f"{self.baseline_model}:{self.baseline_version}"


@dataclass(frozen=True)
class RolloutPlan:
    """What `start_rollout` stores: the versions, the endpoints, the steps and the scope."""

    endpoints: tuple[str, ...]
    candidate_model: str
    candidate_version: str
    baseline_model: str
    baseline_version: str
    steps: tuple[float, ...] = DEFAULT_STEPS
    tenant: str | None = None
    region: str | None = None
    mode: RolloutMode = "hash"


def check_steps(steps: Sequence[float]) -> tuple[float, ...]:
    """`steps` when they rise strictly within (0, 100] and end at 100; RolloutError if not."""
    values = tuple(float(s) for s in steps)
    rising = all(a < b for a, b in pairwise(values))
    if not values or not rising or values[0] <= 0 or values[-1] != 100.0:
        raise RolloutError(f"steps must rise within (0, 100] and end at 100, not {list(values)}")
    return values


def start_rollout(
    engine: Engine,
    plan: RolloutPlan,
    *,
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> Rollout:
    """Store an active rollout at its first step; RolloutError when one is active on any of its
    endpoints. A promoted rollout of those endpoints is superseded in the same transaction;
    `details` (the candidate's checks) go into the start's audit event."""
    steps = check_steps(plan.steps)
    if plan.mode not in ROLLOUT_MODES:
        raise RolloutError(f"mode must be one of {', '.join(ROLLOUT_MODES)}")
    at = to_utc(now)
    with engine.begin() as connection:
        _serialise(connection)
        rollout, superseded = _insert(connection, plan, steps, "active", actor, at)
        extra = {**(details or {}), **({"superseded": superseded} if superseded else {})}
        _audit(connection, rollout, "rollout_step", "start", actor, at, extra)
    return rollout


def pin_versions(
    engine: Engine,
    plans: Sequence[RolloutPlan],
    *,
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> list[Rollout]:
    """Serve each plan's candidate instead of its baseline on all of its endpoints at once, as
    promoted rollouts at 100 % (what a release rollback does on live workers), in one
    transaction with a `rollback` audit event each; RolloutError when one is active there."""
    at = to_utc(now)
    pinned = []
    with engine.begin() as connection:
        _serialise(connection)
        for plan in plans:
            rollout, superseded = _insert(connection, plan, (100.0,), "promoted", actor, at)
            extra = {**(details or {}), **({"superseded": superseded} if superseded else {})}
            _audit(connection, rollout, "rollback", "release", actor, at, extra)
            pinned.append(rollout)
    return pinned


def _insert(
    connection: Connection,
    plan: RolloutPlan,
    steps: tuple[float, ...],
    state: str,
    actor: str,
    at: datetime,
) -> tuple[Rollout, list[int]]:
    """Insert a rollout at its first step, superseding the promoted ones of its endpoints; the
    rollout and the ids superseded. RolloutError when one is active on any of its endpoints."""
    covering = [r for r in _select(connection, IN_FORCE) if set(r.endpoints) & set(plan.endpoints)]
    busy = [r for r in covering if r.state == "active"]
    if busy:
        raise RolloutError(f"rollout {busy[0].id} is active on {', '.join(busy[0].endpoints)}")
    for old in covering:
        connection.execute(
            update(rollouts).where(_c.id == old.id).values(state="superseded", updated_at=at)
        )
    values = {
        "endpoints": list(plan.endpoints),
        "candidate_model": plan.candidate_model,
        "candidate_version": plan.candidate_version,
        "baseline_model": plan.baseline_model,
        "baseline_version": plan.baseline_version,
        "steps": list(steps),
        "step_index": 0,
        "weight": steps[0],
        "tenant": plan.tenant,
        "region": plan.region,
        "mode": plan.mode,
        "state": state,
        "started_at": at,
        "updated_at": at,
        "actor": actor,
    }
    key = connection.execute(insert(rollouts).values(**values)).inserted_primary_key
    assert key is not None  # an INSERT into a table with a primary key always has one
    return _get(connection, int(key[0])), [r.id for r in covering]


def promote_rollout(
    engine: Engine,
    rollout_id: int,
    *,
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
    from_step: int | None = None,
) -> Rollout:
    """Move an active rollout to its next step; at the last step it becomes `promoted`.
    `details` (e.g. the gates' verdicts) go into its audit event; with `from_step`, only a
    rollout still at that step moves (the step the verdicts were on)."""
    at = to_utc(now)
    with engine.begin() as connection:
        _serialise(connection)
        current = _require(connection, rollout_id, "active")
        if from_step is not None and current.step_index != from_step:
            raise RolloutError(f"rollout {rollout_id} left step {from_step} meanwhile")
        index = current.step_index + 1
        done = index == len(current.steps) - 1
        values = {"step_index": index, "weight": current.steps[index], "updated_at": at}
        if done:
            values["state"] = "promoted"
        rollout = _change(connection, current, values)
        kind: AuditKind = "promotion" if done else "rollout_step"
        _audit(connection, rollout, kind, "promote" if done else "step", actor, at, details)
    return rollout


def abort_rollout(
    engine: Engine,
    rollout_id: int,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> Rollout:
    """End an active rollout: every request goes back to the baseline. `details` (e.g. the
    gates' verdicts of an automatic abort) go into its audit event."""
    return _end(engine, rollout_id, "active", "aborted", "abort", actor, now, reason, details)


def record_rollout_check(
    engine: Engine, rollout_id: int, details: dict[str, Any], *, actor: str, now: datetime
) -> None:
    """Audit a check of a rollout that changes nothing (the golden set after a step)."""
    at = to_utc(now)
    with engine.begin() as connection:
        if not _exists(connection, rollout_id):
            raise RolloutError(f"no rollout {rollout_id}")
        rollout = _get(connection, rollout_id)
        _audit(connection, rollout, "rollout_step", "check", actor, at, details)


def roll_back_rollout(
    engine: Engine,
    rollout_id: int,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> Rollout:
    """Undo a promoted rollout (or end an active one): the baseline serves everything again."""
    with engine.connect() as connection:
        state = _get(connection, rollout_id).state if _exists(connection, rollout_id) else None
    if state == "active":
        return _end(
            engine, rollout_id, "active", "aborted", "rollback", actor, now, reason, details
        )
    return _end(
        engine, rollout_id, "promoted", "rolled_back", "rollback", actor, now, reason, details
    )


def rollouts_in_force(engine: Engine) -> list[Rollout]:
    """Active and promoted rollouts, oldest first (what the workers apply); none when the store
    is a SQLite file not created yet (a read must not create an empty database)."""
    url = engine.url.render_as_string(hide_password=False)
    if sqlite_file(url) is not None and not sqlite_file_exists(url):
        return []
    with engine.connect() as connection:
        return _select(connection, IN_FORCE)


def get_rollout(engine: Engine, rollout_id: int) -> Rollout | None:
    """The rollout `rollout_id` (None when there is none)."""
    with engine.connect() as connection:
        return _get(connection, rollout_id) if _exists(connection, rollout_id) else None


def list_rollouts(engine: Engine, *, limit: int | None = None) -> list[Rollout]:
    """Rollouts, newest first (at most `limit`)."""
    statement = select(rollouts).order_by(_c.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(statement).mappings()]


def _end(
    engine: Engine,
    rollout_id: int,
    state: str,
    end_state: str,
    kind: AuditKind,
    actor: str,
    now: datetime,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> Rollout:
    at = to_utc(now)
    with engine.begin() as connection:
        _serialise(connection)
        current = _require(connection, rollout_id, state)
        rollout = _change(
            connection, current, {"state": end_state, "weight": 0.0, "updated_at": at}
        )
        extra = {**(details or {}), **({"reason": reason} if reason else {})}
        _audit(connection, rollout, kind, kind, actor, at, extra)
    return rollout


def _serialise(connection: Connection) -> None:
    """One rollout change at a time, from its first read: PostgreSQL's audit append lock;
    SQLite's write lock, taken by a write that changes nothing (a read would not take it)."""
    lock_appends(connection)
    if connection.dialect.name == "sqlite":
        connection.execute(update(rollouts).where(false()).values(state=_c.state))


def _require(connection: Connection, rollout_id: int, state: str) -> Rollout:
    if not _exists(connection, rollout_id):
        raise RolloutError(f"no rollout {rollout_id}")
    current = _get(connection, rollout_id)
    if current.state != state:
        raise RolloutError(f"rollout {rollout_id} is {current.state}, not {state}")
    return current


def _change(connection: Connection, current: Rollout, values: dict[str, Any]) -> Rollout:
    """Apply `values` when the row is still as read (a concurrent change makes it fail)."""
    statement = (
        update(rollouts)
        .where(_c.id == current.id, _c.state == current.state)
        .where(_c.step_index == current.step_index)
        .values(**values)
    )
    if connection.execute(statement).rowcount != 1:
        raise RolloutError(f"rollout {current.id} changed meanwhile; try again")
    return _get(connection, current.id)


def _audit(
    connection: Connection,
    rollout: Rollout,
    kind: AuditKind,
    action: str,
    actor: str,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    details = {
        "action": action,
        "rollout_id": rollout.id,
        "endpoints": list(rollout.endpoints),
        "baseline": rollout.baseline,
        "weight": rollout.weight,
        "step": rollout.step_index,
        "steps": list(rollout.steps),
        "state": rollout.state,
        "mode": rollout.mode,
        "tenant": rollout.tenant,
        "region": rollout.region,
        **(extra or {}),
    }
    event = AuditEvent(
        kind=kind,
        ts=at,
        model_name=rollout.candidate_model,
        model_version=rollout.candidate_version,
        decision=action,
        actor=actor,
        details=details,
    )
    append_in(connection, [event], now=at)


def _exists(connection: Connection, rollout_id: int) -> bool:
    return connection.execute(select(_c.id).where(_c.id == rollout_id)).first() is not None


def _get(connection: Connection, rollout_id: int) -> Rollout:
    return _record(connection.execute(select(rollouts).where(_c.id == rollout_id)).mappings().one())


def _select(connection: Connection, states: Sequence[str]) -> list[Rollout]:
    statement = select(rollouts).where(_c.state.in_(states)).order_by(_c.id)
    return [_record(row) for row in connection.execute(statement).mappings()]


def _record(row: RowMapping) -> Rollout:
    return Rollout(
        id=int(row["id"]),
        endpoints=tuple(row["endpoints"]),
        candidate_model=str(row["candidate_model"]),
        candidate_version=str(row["candidate_version"]),
        baseline_model=str(row["baseline_model"]),
        baseline_version=str(row["baseline_version"]),
        steps=tuple(float(s) for s in row["steps"]),
        step_index=int(row["step_index"]),
        weight=float(row["weight"]),
        tenant=row["tenant"],
        region=row["region"],
        mode=row["mode"],
        state=str(row["state"]),
        started_at=to_utc(row["started_at"]),
        updated_at=to_utc(row["updated_at"]),
        actor=str(row["actor"]),
    )
