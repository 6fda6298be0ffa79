"""Moving a rollout on its gates' verdicts: a promotion only when every gate passes (or forced,
and audited as such), the golden set against the live service after every step and abort, and
`--auto`: step on a schedule, abort on a failed gate, wait on insufficient data up to a bound.

The clock, the sleep, the judge and the golden check are injected, so the state machine is
tested with a fake clock on a real store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.config import GoldenGates
from servewatch.release_check import CheckReport, ServiceTarget, check_service
from servewatch.rollout_status import StepStatus
from storage.engine import Engine
from storage.rollouts import (
    Rollout,
    RolloutError,
    abort_rollout,
    get_rollout,
    promote_rollout,
    record_rollout_check,
    roll_back_rollout,
)

# (rollout, now) -> its current step judged.
Judge = Callable[[Rollout, datetime], StepStatus]
# (rollout, what just happened: "step" or "abort") -> the golden set's report, None when not run.
GoldenCheck = Callable[[Rollout, str], CheckReport | None]


def no_golden(rollout: Rollout, after: str) -> CheckReport | None:
    """The golden check when no live service is given (--url): none."""
    return None


def service_golden(
    target: ServiceTarget,
    gates: GoldenGates,
    settle_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> GoldenCheck:
    """The golden set posted to the live service (release check's HTTP path), once the workers
    have had `settle_s` to apply the change: the candidate's after a step, the baseline's
    after an abort or a rollback."""

    def check(rollout: Rollout, after: str) -> CheckReport:
        sleep(settle_s)
        serving = rollout.state in ("active", "promoted") and after == "step"
        model, version = (
            (rollout.candidate_model, rollout.candidate_version)
            if serving
            else (rollout.baseline_model, rollout.baseline_version)
        )
        return check_service(target, gates, {model: version})

    return check


class GatesRefused(RolloutError):
    """A promotion refused because a gate failed or could not judge."""

    def __init__(self, status: StepStatus) -> None:
        self.status = status
        blocking = status.failing or status.undecided
        names = ", ".join(f"{g.gate} ({g.verdict})" for g in blocking)
        super().__init__(f"rollout {status.rollout.id} step {status.rollout.step_index}: {names}")


def promote_on_gates(
    engine: Engine, status: StepStatus, *, actor: str, now: datetime, force: bool = False
) -> Rollout:
    """Promote the judged rollout when every gate passed; GatesRefused if not, unless `force`
    (then the audit event says it was forced, with the verdicts it overrode)."""
    if status.verdict != "pass" and not force:
        raise GatesRefused(status)
    details: dict[str, Any] = {"gates": status.audit_details()}
    if status.verdict != "pass":
        details["forced"] = True
    r = status.rollout
    return promote_rollout(
        engine, r.id, actor=actor, now=now, details=details, from_step=r.step_index
    )


def golden_after(
    engine: Engine, rollout: Rollout, after: str, check: GoldenCheck, *, actor: str, now: datetime
) -> CheckReport | None:
    """Run the golden set after a step or an abort and audit its result."""
    report = check(rollout, after)
    if report is not None:
        problems = [f"{c.name} {c.subject}: {c.problem}" for c in report.checks if not c.passed]
        details = {"after": after, "golden": report.audit_details(), "problems": problems}
        record_rollout_check(engine, rollout.id, details, actor=actor, now=now)
    return report


def abort_on(
    engine: Engine,
    rollout: Rollout,
    reason: str,
    details: dict[str, Any],
    check: GoldenCheck,
    *,
    actor: str,
    now: datetime,
) -> tuple[Rollout, CheckReport | None]:
    """Abort (roll back, once promoted) with the evidence in the audit event, then check the
    baseline's golden set."""
    end = abort_rollout if rollout.state == "active" else roll_back_rollout
    aborted = end(engine, rollout.id, actor=actor, now=now, reason=reason, details=details)
    return aborted, golden_after(engine, aborted, "abort", check, actor=actor, now=now)


@dataclass(frozen=True)
class AutoPolicy:
    """How `--auto` steps: judge every `interval_s`; give up waiting for enough rows after a
    step has run `max_wait_s` without them (the rollout stays where it is)."""

    interval_s: float = 60.0
    max_wait_s: float = 1800.0


AutoEnd = Literal["promoted", "aborted", "waited_out", "ended_elsewhere"]


@dataclass
class AutoOutcome:
    """How `--auto` ended, the rollout then, and every step status it judged."""

    end: AutoEnd
    rollout: Rollout
    statuses: list[StepStatus] = field(default_factory=list)
    golden: list[CheckReport] = field(default_factory=list)
    reason: str = ""


def run_auto(
    engine: Engine,
    rollout_id: int,
    *,
    judge: Judge,
    policy: AutoPolicy,
    actor: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    golden: GoldenCheck = no_golden,
    on_status: Callable[[StepStatus], None] = lambda status: None,
) -> AutoOutcome:
    """Step the active rollout on its gates until it is promoted, aborted, or waited out."""
    rollout = _current(engine, rollout_id)
    outcome = AutoOutcome("ended_elsewhere", rollout)
    while rollout.state == "active":
        sleep(policy.interval_s)
        now = clock()
        rollout = _current(engine, rollout_id)
        if rollout.state != "active":
            break
        status = judge(rollout, now)
        outcome.statuses.append(status)
        on_status(status)
        if status.verdict == "fail":
            names = ", ".join(g.gate for g in status.failing)
            details = {"gates": status.audit_details(), "auto": True}
            rollout, report = abort_on(
                engine, rollout, f"gates failed: {names}", details, golden, actor=actor, now=now
            )
            return _ended(outcome, "aborted", rollout, report, f"gates failed: {names}")
        if status.verdict == "insufficient_data":
            waited = (now - rollout.updated_at).total_seconds()
            if waited >= policy.max_wait_s:
                reason = f"too few rows after {waited:.0f} s at step {rollout.step_index}"
                return _ended(outcome, "waited_out", rollout, None, reason)
            continue
        rollout = promote_on_gates(engine, status, actor=actor, now=now)
        report = golden_after(engine, rollout, "step", golden, actor=actor, now=now)
        if report is not None:
            outcome.golden.append(report)
            if not report.passed:
                reason = "golden set failed after the step"
                rollout, after = abort_on(
                    engine, rollout, reason, {"auto": True}, golden, actor=actor, now=now
                )
                return _ended(outcome, "aborted", rollout, after, reason)
        if rollout.state == "promoted":
            return _ended(outcome, "promoted", rollout, None, "every step passed")
    outcome.rollout = rollout
    return outcome


def _current(engine: Engine, rollout_id: int) -> Rollout:
    rollout = get_rollout(engine, rollout_id)
    if rollout is None:
        raise RolloutError(f"no rollout {rollout_id}")
    return rollout


def _ended(
    outcome: AutoOutcome, end: AutoEnd, rollout: Rollout, report: CheckReport | None, reason: str
) -> AutoOutcome:
    outcome.end, outcome.rollout, outcome.reason = end, rollout, reason
    if report is not None:
        outcome.golden.append(report)
    return outcome
