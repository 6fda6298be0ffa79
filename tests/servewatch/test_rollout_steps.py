"""The rollout state machine on its gates, on a real store (SQLite and PostgreSQL) with seeded
traffic written as an injected clock advances: no promotion from a failing step (unless forced,
and then audited as forced), `--auto` aborts a bad candidate and takes a good one to 100 %, and
waits on too few rows only up to its bound."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.config import MonitorsConfig, RolloutGates
from servewatch.rollout_status import step_status
from servewatch.rollout_steps import AutoPolicy, GatesRefused, promote_on_gates, run_auto
from storage.engine import Engine
from storage.rollouts import Rollout, RolloutError, RolloutPlan, get_rollout, start_rollout
from storage.schema import audit_log
from storage.writer import write_predictions

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
MODEL, BASELINE, CANDIDATE = "ticket_classifier", "v1", "v2"
ENDPOINT = "classify_ticket"
CLASSES = ("account", "billing", "other", "shipping", "technical")
# Nothing is replayed here (no models): disagreement is the replay tests' and the e2e test's.
GATES = RolloutGates(min_candidate_rows=50, max_disagreement=None)
ROWS_PER_INTERVAL = 1000
INTERVAL = timedelta(seconds=60)


@dataclass
class Traffic:
    """A fake clock whose sleep serves the rollout's split of seeded traffic meanwhile."""

    engine: Engine
    rollout_id: int
    candidate_error_rate: float = 0.01
    rows_per_interval: int = ROWS_PER_INTERVAL
    now: datetime = T0
    rng: random.Random = field(default_factory=lambda: random.Random(18))
    served: int = 0

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        rollout = get_rollout(self.engine, self.rollout_id)
        assert rollout is not None
        start, self.now = self.now, self.now + timedelta(seconds=seconds)
        records = [self._row(rollout, start, i) for i in range(self.rows_per_interval)]
        write_predictions(self.engine, records, now=self.now)

    def _row(self, rollout: Rollout, start: datetime, i: int) -> dict[str, object]:
        rng = self.rng
        candidate = rng.random() * 100 < rollout.weight
        failed = rng.random() < (self.candidate_error_rate if candidate else 0.01)
        self.served += 1
        return {
            "request_id": f"r-{self.served}",
            "ts": start + timedelta(milliseconds=i * 50),
            "tenant": "acme",
            "endpoint": ENDPOINT,
            "model_name": MODEL,
            "model_version": CANDIDATE if candidate else BASELINE,
            "predicted_class": None if failed else rng.choice(CLASSES),
            "confidence": None if failed else round(rng.uniform(0.5, 1.0), 6),
            "latency_ms": rng.uniform(10, 30),
            "compute_ms": 1.0,
            "batch_size": 1,
            "status": "model_error" if failed else "ok",
        }


def _judge(engine: Engine):
    monitors = MonitorsConfig()
    return lambda rollout, now: step_status(
        engine, rollout, gates=GATES, monitors=monitors, now=now
    )


def _start(engine: Engine, steps=(10.0, 50.0, 100.0)) -> Rollout:
    plan = RolloutPlan(
        endpoints=(ENDPOINT,),
        candidate_model=MODEL,
        candidate_version=CANDIDATE,
        baseline_model=MODEL,
        baseline_version=BASELINE,
        steps=steps,
    )
    return start_rollout(engine, plan, actor="t", now=T0)


def _events(engine: Engine) -> list[dict]:
    kinds = ("rollout_step", "promotion", "abort")
    statement = select(audit_log).where(audit_log.c.kind.in_(kinds)).order_by(audit_log.c.id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def test_a_failing_step_is_not_promoted_and_a_forced_promotion_is_audited(store_engine):
    rollout = _start(store_engine)
    traffic = Traffic(store_engine, rollout.id, candidate_error_rate=0.3)
    traffic.sleep(60)
    status = _judge(store_engine)(rollout, traffic.clock())
    assert status.verdict == "fail"
    assert [g.gate for g in status.failing] == [
        "max_error_rate_increase",
        "max_schema_failure_rate",
    ]

    with pytest.raises(GatesRefused, match="max_error_rate_increase"):
        promote_on_gates(store_engine, status, actor="t", now=traffic.clock())
    assert get_rollout(store_engine, rollout.id).step_index == 0

    forced = promote_on_gates(store_engine, status, actor="boss", now=traffic.clock(), force=True)
    assert forced.step_index == 1
    event = _events(store_engine)[-1]
    assert (event["kind"], event["actor"]) == ("rollout_step", "boss")
    assert event["details"]["forced"] is True
    gates = {g["gate"]: g for g in event["details"]["gates"]["gates"]}
    assert gates["max_error_rate_increase"]["verdict"] == "fail"
    assert gates["max_error_rate_increase"]["n"] == status.evidence.candidate.n


def test_a_stale_verdict_does_not_promote_a_step_it_was_not_on(store_engine):
    rollout = _start(store_engine)
    traffic = Traffic(store_engine, rollout.id)
    traffic.sleep(60)
    status = _judge(store_engine)(rollout, traffic.clock())
    assert status.verdict == "pass"
    promote_on_gates(store_engine, status, actor="t", now=traffic.clock())
    with pytest.raises(RolloutError, match="left step 0"):
        promote_on_gates(store_engine, status, actor="t", now=traffic.clock())


def test_auto_aborts_a_candidate_that_fails_a_gate(store_engine):
    rollout = _start(store_engine)
    traffic = Traffic(store_engine, rollout.id, candidate_error_rate=0.3)
    outcome = run_auto(
        store_engine, rollout.id, judge=_judge(store_engine),
        policy=AutoPolicy(interval_s=60, max_wait_s=600), actor="auto",
        clock=traffic.clock, sleep=traffic.sleep,
    )  # fmt: skip
    assert outcome.end == "aborted"
    assert (outcome.rollout.state, outcome.rollout.weight) == ("aborted", 0.0)
    assert len(outcome.statuses) == 1  # judged once at 10 %, then aborted
    abort = _events(store_engine)[-1]
    assert (abort["kind"], abort["actor"]) == ("abort", "auto")
    assert abort["details"]["auto"] is True
    assert abort["details"]["reason"].startswith("gates failed: max_error_rate_increase")
    assert abort["details"]["gates"]["verdict"] == "fail"


def test_auto_promotes_a_good_candidate_step_by_step_to_100(store_engine):
    rollout = _start(store_engine)
    traffic = Traffic(store_engine, rollout.id)
    outcome = run_auto(
        store_engine, rollout.id, judge=_judge(store_engine),
        policy=AutoPolicy(interval_s=60, max_wait_s=600), actor="auto",
        clock=traffic.clock, sleep=traffic.sleep,
    )  # fmt: skip
    assert outcome.end == "promoted"
    assert (outcome.rollout.state, outcome.rollout.weight) == ("promoted", 100.0)
    assert [s.rollout.weight for s in outcome.statuses] == [10.0, 50.0]
    assert all(s.verdict == "pass" for s in outcome.statuses)
    # Each step was judged on its own rows: about its weight's share of the interval's traffic.
    candidate_rows = [s.evidence.candidate.n for s in outcome.statuses]
    assert candidate_rows[0] == pytest.approx(100, abs=40)
    assert candidate_rows[1] == pytest.approx(500, abs=80)
    events = _events(store_engine)
    assert [e["kind"] for e in events] == ["rollout_step", "rollout_step", "promotion"]
    assert [e["details"]["gates"]["verdict"] for e in events[1:]] == ["pass", "pass"]
    assert traffic.now == T0 + 2 * INTERVAL


def test_auto_waits_on_too_few_rows_up_to_its_bound(store_engine):
    rollout = _start(store_engine, steps=(1.0, 100.0))
    traffic = Traffic(store_engine, rollout.id, rows_per_interval=100)  # ~1 candidate row a go
    outcome = run_auto(
        store_engine, rollout.id, judge=_judge(store_engine),
        policy=AutoPolicy(interval_s=60, max_wait_s=300), actor="auto",
        clock=traffic.clock, sleep=traffic.sleep,
    )  # fmt: skip
    assert outcome.end == "waited_out"
    assert len(outcome.statuses) == 5
    assert {s.verdict for s in outcome.statuses} == {"insufficient_data"}
    assert get_rollout(store_engine, rollout.id).state == "active"  # left where it was
    assert [e["kind"] for e in _events(store_engine)] == ["rollout_step"]  # the start only


def test_auto_stops_when_the_rollout_is_ended_elsewhere(store_engine):
    from storage.rollouts import abort_rollout

    rollout = _start(store_engine)
    traffic = Traffic(store_engine, rollout.id)

    def sleep_then_abort(seconds: float) -> None:
        traffic.sleep(seconds)
        abort_rollout(store_engine, rollout.id, actor="human", now=traffic.clock())

    outcome = run_auto(
        store_engine, rollout.id, judge=_judge(store_engine),
        policy=AutoPolicy(interval_s=60), actor="auto",
        clock=traffic.clock, sleep=sleep_then_abort,
    )  # fmt: skip
    assert outcome.end == "ended_elsewhere"
    assert outcome.statuses == []


class _Crash(Exception):
    """The process running --auto dies."""


def test_auto_killed_mid_rollout_resumes_from_the_stored_step(store_engine):
    rollout = _start(store_engine)
    traffic = Traffic(store_engine, rollout.id)
    sleeps = 0

    def sleep_then_die(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 2:  # after the first promotion, while the 50 % step serves
            raise _Crash
        traffic.sleep(seconds)

    policy = AutoPolicy(interval_s=60, max_wait_s=600)
    with pytest.raises(_Crash):
        run_auto(
            store_engine, rollout.id, judge=_judge(store_engine), policy=policy, actor="auto",
            clock=traffic.clock, sleep=sleep_then_die,
        )  # fmt: skip
    stored = get_rollout(store_engine, rollout.id)
    assert (stored.state, stored.weight) == ("active", 50.0)  # the state survives, at its step
    outcome = run_auto(
        store_engine, rollout.id, judge=_judge(store_engine), policy=policy, actor="auto",
        clock=traffic.clock, sleep=traffic.sleep,
    )  # fmt: skip
    assert outcome.end == "promoted"
    assert [s.rollout.weight for s in outcome.statuses] == [50.0]  # no step run twice
    kinds = [e["kind"] for e in _events(store_engine)]
    assert kinds == ["rollout_step", "rollout_step", "promotion"]
