"""The rollouts table: the state machine and its audit events, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage.audit import verify
from storage.rollouts import (
    RolloutError,
    RolloutPlan,
    abort_rollout,
    check_steps,
    get_rollout,
    list_rollouts,
    promote_rollout,
    roll_back_rollout,
    rollouts_in_force,
    start_rollout,
)
from storage.schema import audit_log

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
PLAN = RolloutPlan(
    endpoints=("score_risk", "score_risks"),
    candidate_model="risk_scorer",
    candidate_version="v2",
    baseline_model="risk_scorer",
    baseline_version="v1",
    steps=(5, 25, 100),
    tenant="acme",
)


def _audit_rows(engine):
    with engine.connect() as connection:
        return connection.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()


def test_a_started_rollout_reads_back_at_its_first_step(store_engine):
    rollout = start_rollout(store_engine, PLAN, actor="alice", now=T0)
    assert get_rollout(store_engine, rollout.id) == rollout
    assert rollout.endpoints == ("score_risk", "score_risks")
    assert (rollout.candidate, rollout.baseline) == ("risk_scorer:v2", "risk_scorer:v1")
    assert (rollout.steps, rollout.step_index, rollout.weight) == ((5.0, 25.0, 100.0), 0, 5.0)
    assert (rollout.tenant, rollout.region, rollout.mode) == ("acme", None, "hash")
    assert (rollout.state, rollout.started_at, rollout.actor) == ("active", T0, "alice")
    assert rollouts_in_force(store_engine) == [rollout]


def test_promote_steps_up_and_the_last_step_is_promoted(store_engine):
    rollout = start_rollout(store_engine, PLAN, actor="alice", now=T0)
    second = promote_rollout(store_engine, rollout.id, actor="bob", now=T0 + timedelta(minutes=5))
    assert (second.state, second.weight, second.step_index) == ("active", 25.0, 1)
    assert second.updated_at == T0 + timedelta(minutes=5)
    last = promote_rollout(store_engine, rollout.id, actor="bob", now=T0 + timedelta(minutes=9))
    assert (last.state, last.weight) == ("promoted", 100.0)
    assert rollouts_in_force(store_engine) == [last]
    with pytest.raises(RolloutError, match="promoted, not active"):
        promote_rollout(store_engine, rollout.id, actor="bob", now=T0)
    kinds = [(r["kind"], r["details"]["action"], r["actor"]) for r in _audit_rows(store_engine)]
    assert kinds == [
        ("rollout_step", "start", "alice"),
        ("rollout_step", "step", "bob"),
        ("promotion", "promote", "bob"),
    ]
    assert verify(store_engine).ok


def test_abort_takes_the_weight_to_zero_and_leaves_force(store_engine):
    rollout = start_rollout(store_engine, PLAN, actor="alice", now=T0)
    aborted = abort_rollout(store_engine, rollout.id, actor="carol", now=T0, reason="errors")
    assert (aborted.state, aborted.weight) == ("aborted", 0.0)
    assert rollouts_in_force(store_engine) == []
    with pytest.raises(RolloutError, match="aborted, not active"):
        abort_rollout(store_engine, rollout.id, actor="carol", now=T0)
    last = _audit_rows(store_engine)[-1]
    assert (last["kind"], last["model_version"]) == ("abort", "v2")
    assert last["details"]["reason"] == "errors"


def test_rollback_undoes_a_promoted_rollout(store_engine):
    rollout = start_rollout(store_engine, PLAN, actor="alice", now=T0)
    promote_rollout(store_engine, rollout.id, actor="bob", now=T0)
    promote_rollout(store_engine, rollout.id, actor="bob", now=T0)
    undone = roll_back_rollout(store_engine, rollout.id, actor="dave", now=T0)
    assert (undone.state, undone.weight) == ("rolled_back", 0.0)
    assert rollouts_in_force(store_engine) == []
    assert _audit_rows(store_engine)[-1]["kind"] == "rollback"


def test_rollback_of_an_active_rollout_aborts_it(store_engine):
    rollout = start_rollout(store_engine, PLAN, actor="alice", now=T0)
    assert roll_back_rollout(store_engine, rollout.id, actor="dave", now=T0).state == "aborted"


def test_no_two_active_rollouts_share_an_endpoint(store_engine):
    start_rollout(store_engine, PLAN, actor="alice", now=T0)
    other = RolloutPlan(
        endpoints=("score_risk",),
        candidate_model="risk_scorer",
        candidate_version="v3",
        baseline_model="risk_scorer",
        baseline_version="v1",
    )
    with pytest.raises(RolloutError, match="is active on"):
        start_rollout(store_engine, other, actor="bob", now=T0)
    tickets = RolloutPlan(
        endpoints=("classify_ticket",),
        candidate_model="ticket_router",
        candidate_version="v2",
        baseline_model="ticket_router",
        baseline_version="v1",
    )
    start_rollout(store_engine, tickets, actor="bob", now=T0)
    assert len(rollouts_in_force(store_engine)) == 2


def test_a_new_rollout_supersedes_a_promoted_one(store_engine):
    first = start_rollout(store_engine, PLAN, actor="alice", now=T0)
    for _ in range(2):
        promote_rollout(store_engine, first.id, actor="alice", now=T0)
    nxt = RolloutPlan(
        endpoints=("score_risk", "score_risks"),
        candidate_model="risk_scorer",
        candidate_version="v3",
        baseline_model="risk_scorer",
        baseline_version="v2",
    )
    second = start_rollout(store_engine, nxt, actor="alice", now=T0 + timedelta(hours=1))
    assert [r.id for r in rollouts_in_force(store_engine)] == [second.id]
    assert get_rollout(store_engine, first.id).state == "superseded"
    assert [r.id for r in list_rollouts(store_engine)] == [second.id, first.id]
    assert _audit_rows(store_engine)[-1]["details"]["superseded"] == [first.id]


def test_an_unknown_rollout_is_refused(store_engine):
    assert get_rollout(store_engine, 404) is None
    with pytest.raises(RolloutError, match="no rollout 404"):
        promote_rollout(store_engine, 404, actor="alice", now=T0)


@pytest.mark.parametrize("steps", [(), (5, 5, 100), (0, 100), (5, 50), (50, 25, 100)])
def test_steps_must_rise_to_100(steps):
    with pytest.raises(RolloutError, match="steps must rise"):
        check_steps(steps)


def test_concurrent_starts_on_one_endpoint_leave_one_active(store_engine):
    barrier = threading.Barrier(4)

    def attempt(n: int) -> str:
        plan = replace(PLAN, candidate_version=f"v{n + 2}")
        barrier.wait()
        try:
            start_rollout(store_engine, plan, actor=f"user{n}", now=T0)
        except RolloutError:
            return "refused"
        return "started"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert sorted(outcomes) == ["refused", "refused", "refused", "started"]
    assert len(rollouts_in_force(store_engine)) == 1
    assert verify(store_engine).ok


def test_reading_a_sqlite_store_not_created_yet_creates_nothing(tmp_path):
    from storage.engine import create_small_engine

    path = tmp_path / "never.db"
    engine = create_small_engine(f"sqlite:///{path}")
    try:
        assert rollouts_in_force(engine) == []
    finally:
        engine.dispose()
    assert not path.exists()
