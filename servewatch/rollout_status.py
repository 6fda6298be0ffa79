"""`rollout status`: a rollout's current step judged against its baseline.

The rows come from the store (the step began at the rollout's `updated_at`: every step change
sets it), the replay re-scores a bounded sample of the step's baseline-answered stored inputs
with both versions through replay's code, and the judgement is monitors.rollout_gates'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core.config import MonitorsConfig, RolloutGates, Settings
from core.timeutil import iso_utc, to_utc
from monitors.replay_compare import Comparison, GateOutcome, GateVerdict, compare
from monitors.rollout_gates import (
    InputsNotStored,
    StepEvidence,
    judge_step,
    step_verdict,
    version_window,
)
from servewatch.replay import DEFAULT_BATCH_SIZE, ModelLoader, score_items
from storage.prediction_samples import RowScope, stored_inputs, version_rows
from storage.rollouts import Rollout, RolloutError

# (rollout, step start, now) -> the replay of the step's baseline-answered inputs, or None.
Replayer = Callable[[Rollout, datetime, datetime], Comparison | InputsNotStored | None]


def rollout_scope(rollout: Rollout) -> RowScope:
    """The rows a rollout splits: its endpoints, tenant and region."""
    return RowScope(endpoints=rollout.endpoints, tenant=rollout.tenant, region=rollout.region)


@dataclass(frozen=True)
class StepStatus:
    """A step's evidence, its gates' verdicts and the step's verdict."""

    rollout: Rollout
    since: datetime
    until: datetime
    evidence: StepEvidence
    gates: list[GateVerdict]

    @property
    def verdict(self) -> GateOutcome:
        return step_verdict(self.gates)

    @property
    def failing(self) -> list[GateVerdict]:
        return [g for g in self.gates if g.verdict == "fail"]

    @property
    def undecided(self) -> list[GateVerdict]:
        return [g for g in self.gates if g.verdict == "insufficient_data"]

    def audit_details(self) -> dict[str, Any]:
        """What a promotion's or an abort's audit event records: verdicts, values, sizes."""
        return {
            "verdict": self.verdict,
            "step": self.rollout.step_index,
            "window": {"since": iso_utc(self.since), "until": iso_utc(self.until)},
            "rows": {"baseline": self.evidence.baseline.n, "candidate": self.evidence.candidate.n},
            "gates": [
                {k: g.as_json()[k] for k in ("gate", "verdict", "value", "limit", "n")}
                for g in self.gates
            ],
        }

    def as_json(self) -> dict[str, Any]:
        r = self.rollout
        replay = self.evidence.replay
        return {
            "rollout_id": r.id,
            "candidate": r.candidate,
            "baseline": r.baseline,
            "endpoints": list(r.endpoints),
            "tenant": r.tenant,
            "region": r.region,
            "step": r.step_index,
            "weight": r.weight,
            "window": {"since": iso_utc(self.since), "until": iso_utc(self.until)},
            "verdict": self.verdict,
            "baseline_window": self.evidence.baseline.summary(),
            "candidate_window": self.evidence.candidate.summary(),
            "replay": None if replay is None else replay.as_json(),
            "gates": [g.as_json() for g in self.gates],
        }


def step_status(
    engine: Engine,
    rollout: Rollout,
    *,
    gates: RolloutGates,
    monitors: MonitorsConfig,
    now: datetime,
    replay: Replayer | None = None,
) -> StepStatus:
    """The rollout's current step (since its `updated_at`, until `now`) judged."""
    since, until = rollout.updated_at, to_utc(now)
    if until <= since:
        raise RolloutError(f"the step began at {iso_utc(since)}, not before {iso_utc(until)}")
    versions = (rollout.baseline_version, rollout.candidate_version)
    rows = version_rows(
        engine, rollout.candidate_model, versions, since, until, rollout_scope(rollout)
    )
    evidence = StepEvidence(
        baseline=version_window(rows, rollout.baseline_version),
        candidate=version_window(rows, rollout.candidate_version),
        replay=None
        if replay is None or gates.replay_sample == 0
        else replay(rollout, since, until),
    )
    return StepStatus(rollout, since, until, evidence, judge_step(evidence, gates, monitors))


def model_replayer(engine: Engine, settings: Settings) -> Replayer:
    """Replays through the registry's models (each loaded once), as `servewatch replay` does."""
    loader = ModelLoader(settings)
    sample = settings.config.release.gates.replay_sample
    cutoff = settings.config.monitors.low_confidence_cutoff

    def replay(
        rollout: Rollout, since: datetime, until: datetime
    ) -> Comparison | InputsNotStored | None:
        stored = stored_inputs(
            engine,
            rollout.baseline_model,
            since,
            until,
            rollout_scope(rollout),
            sample,
            model_version=rollout.baseline_version,
        )
        if stored.rows.empty:  # none stored by configuration, or no baseline row yet
            return InputsNotStored(stored.without_inputs) if stored.without_inputs else None
        baseline = loader.load(rollout.baseline_model, rollout.baseline_version)
        candidate = loader.load(rollout.candidate_model, rollout.candidate_version)
        items = score_items(baseline, candidate, stored.rows, DEFAULT_BATCH_SIZE)
        return compare(items, sorted(set(baseline.classes) | set(candidate.classes)), cutoff)

    return replay
