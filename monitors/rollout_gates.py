"""A canary step judged against its baseline (pure): the candidate's rows since the step began
against the baseline's rows of the same window and scope, and a replay of baseline-answered
inputs, each against a configured gate (core.config.RolloutGates).

Error-rate rise, class shift and confidence drift are decided as the monitors decide: an effect
floor (the gate's limit) and a two-sample test at the warn false-alarm rate
(monitors.thresholds.judge), the baseline window standing as the reference; so is the p99
latency ratio, its test being whether more of the candidate's requests are slower than the
baseline's p99. Schema failures and disagreement fail when the 95 % interval of their share
lies wholly above the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from core.config import MonitorsConfig, RolloutGates
from core.contracts import ERROR_STATUS
from monitors.class_shift import MONITOR as CLASS_SHIFT
from monitors.class_shift import class_shift
from monitors.distances import share_rise_test
from monitors.drift import MONITOR as CONFIDENCE_DRIFT
from monitors.drift import confidence_drift
from monitors.histograms import FINE_EDGES, ConfidenceHistogram
from monitors.replay_compare import (
    Comparison,
    GateOutcome,
    GateVerdict,
    judged_gate,
    wilson_interval,
)
from monitors.results import Measurement
from monitors.schema_failures import failure_rate, inference_count

# The columns of the step's rows the gates read (one row per prediction, all statuses).
ROW_COLUMNS = ("model_version", "status", "latency_ms", "predicted_class", "confidence")
# The outcomes counted as the version's errors: the server's (5xx), not the client's.
SERVER_ERRORS = tuple(code for code, status in ERROR_STATUS.items() if status >= 500)
# The name the error-rate rise is judged under (monitors.thresholds.judge takes any name).
ERROR_RATE = "rollout_error_rate"
LATENCY = "rollout_latency"
NOTHING_REPLAYED = "no baseline row of this step to replay yet"
INSUFFICIENT: GateOutcome = "insufficient_data"


@dataclass(frozen=True)
class VersionWindow:
    """One version's rows in the step: outcomes, latencies, classes and confidences."""

    version: str
    statuses: dict[str, int]
    latency_ms: np.ndarray
    classes: dict[str, int]
    confidences: np.ndarray

    @property
    def n(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(self.statuses.get(code, 0) for code in SERVER_ERRORS)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.n if self.n else None

    def latency(self, percentile: float) -> float | None:
        return float(np.percentile(self.latency_ms, percentile)) if len(self.latency_ms) else None

    def histogram(self) -> ConfidenceHistogram:
        counts, _ = np.histogram(np.clip(self.confidences, 0.0, 1.0), bins=FINE_EDGES)
        return ConfidenceHistogram.from_counts(FINE_EDGES, counts)

    def summary(self) -> dict[str, Any]:
        """The numbers printed beside the gates."""
        return {
            "version": self.version,
            "n": self.n,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p95_ms": self.latency(95),
            "p99_ms": self.latency(99),
            "schema_failure_rate": failure_rate(self.statuses)["failure_rate"].value,
            "classes": dict(self.classes),
        }


def version_window(rows: pd.DataFrame, version: str) -> VersionWindow:
    """`version`'s rows (ROW_COLUMNS) as a window; empty when it has none."""
    mine = rows[rows["model_version"] == version]
    ok = mine[(mine["status"] == "ok") & mine["confidence"].notna()]
    statuses = {str(k): int(v) for k, v in mine["status"].value_counts().sort_index().items()}
    classes = {str(k): int(v) for k, v in ok["predicted_class"].value_counts().sort_index().items()}
    return VersionWindow(
        version=version,
        statuses=statuses,
        latency_ms=mine["latency_ms"].to_numpy(dtype=np.float64),
        classes=classes,
        confidences=ok["confidence"].to_numpy(dtype=np.float64),
    )


@dataclass(frozen=True)
class InputsNotStored:
    """The step's baseline rows carry no stored input (the config does not store them), so
    disagreement can never be judged on them: that gate is left out instead of blocking."""

    rows_without_input: int

    @property
    def reason(self) -> str:
        return (
            f"disagreement not judged: the baseline's {self.rows_without_input} rows of this "
            "step carry no stored input (redaction.store_raw_inputs is off)"
        )

    def as_json(self) -> dict[str, Any]:
        return {"not_judged": self.reason, "rows_without_input": self.rows_without_input}


@dataclass(frozen=True)
class StepEvidence:
    """What the gates judge: both windows, and the replay of baseline-answered inputs."""

    baseline: VersionWindow
    candidate: VersionWindow
    replay: Comparison | InputsNotStored | None = None


def judge_step(
    evidence: StepEvidence, gates: RolloutGates, monitors: MonitorsConfig
) -> list[GateVerdict]:
    """The configured gates on one step (unset gates are left out). With fewer candidate rows
    than `gates.min_candidate_rows`, every gate is insufficient_data (its value still shown)."""
    verdicts = [
        verdict
        for verdict in (
            _error_rate(evidence, gates, monitors),
            _latency(evidence, gates, monitors),
            _schema_failures(evidence, gates),
            _class_shift(evidence, gates, monitors),
            _confidence_drift(evidence, gates, monitors),
            _disagreement(evidence, gates),
        )
        if verdict is not None
    ]
    return [_enough(v, evidence.candidate.n, gates.min_candidate_rows) for v in verdicts]


def step_verdict(verdicts: Sequence[GateVerdict]) -> GateOutcome:
    """fail when a gate fails; else insufficient_data when one cannot judge; else pass."""
    found = {v.verdict for v in verdicts}
    if "fail" in found:
        return "fail"
    return INSUFFICIENT if INSUFFICIENT in found else "pass"


def _enough(verdict: GateVerdict, candidate_rows: int, least: int) -> GateVerdict:
    if candidate_rows >= least:
        return verdict
    details = {**verdict.details, "min_candidate_rows": least, "candidate_rows": candidate_rows}
    return replace(verdict, passed=False, status=INSUFFICIENT, details=details)


def _error_rate(
    evidence: StepEvidence, gates: RolloutGates, monitors: MonitorsConfig
) -> GateVerdict | None:
    limit = gates.max_error_rate_increase
    if limit is None:
        return None
    base, cand = evidence.baseline, evidence.candidate
    if not base.n or not cand.n:
        return GateVerdict("max_error_rate_increase", None, limit, cand.n, False, INSUFFICIENT)
    rise = share_rise_test(base.errors, base.n, cand.errors, cand.n)
    sizes = {"reference_n": base.n, "current_n": cand.n}
    measurement = Measurement(
        (cand.errors / cand.n) - (base.errors / base.n), {**sizes, **rise.details()}
    )
    verdict = judged_gate(
        "max_error_rate_increase", ERROR_RATE, measurement, limit, cand.n, monitors,
        min_n=1, metric="increase",
    )  # fmt: skip
    return _with(verdict, baseline=base.error_rate, candidate=cand.error_rate)


def _latency(
    evidence: StepEvidence, gates: RolloutGates, monitors: MonitorsConfig
) -> GateVerdict | None:
    limit = gates.max_p99_latency_ratio
    if limit is None:
        return None
    base, cand = evidence.baseline, evidence.candidate
    base_p99, cand_p99 = base.latency(99), cand.latency(99)
    if base_p99 is None or cand_p99 is None:
        return GateVerdict("max_p99_latency_ratio", None, limit, cand.n, False, INSUFFICIENT)
    # A p99 of a hundred rows is nearly their maximum: the ratio fails only when the share of
    # the candidate's requests slower than the baseline's p99 also rose beyond noise.
    base_slow = int((base.latency_ms > base_p99).sum())
    cand_slow = int((cand.latency_ms > base_p99).sum())
    tail = share_rise_test(base_slow, base.n, cand_slow, cand.n)
    details = {
        "reference_n": base.n,
        "current_n": cand.n,
        **tail.details(),
        "baseline_p95_ms": base.latency(95),
        "candidate_p95_ms": cand.latency(95),
        "baseline_p99_ms": base_p99,
        "candidate_p99_ms": cand_p99,
        "candidate_share_above_baseline_p99": cand_slow / cand.n,
    }
    ratio = Measurement(cand_p99 / max(base_p99, 1e-9), details)
    verdict = judged_gate(
        "max_p99_latency_ratio", LATENCY, ratio, limit, cand.n, monitors, min_n=1, metric="ratio"
    )
    return _with(verdict, **details)


def _schema_failures(evidence: StepEvidence, gates: RolloutGates) -> GateVerdict | None:
    limit = gates.max_schema_failure_rate
    if limit is None:
        return None
    cand = evidence.candidate
    measured = failure_rate(cand.statuses)["failure_rate"]
    base_rate = failure_rate(evidence.baseline.statuses)["failure_rate"].value
    details = {**measured.details, "baseline": base_rate}
    failures = int(measured.details["failures"])
    return _share_above(
        "max_schema_failure_rate", failures, inference_count(cand.statuses), limit, details
    )


def _class_shift(
    evidence: StepEvidence, gates: RolloutGates, monitors: MonitorsConfig
) -> GateVerdict | None:
    limit = gates.max_class_shift_psi
    if limit is None:
        return None
    base, cand = evidence.baseline.classes, evidence.candidate.classes
    psi = class_shift(base, cand)["psi"] if sum(base.values()) and sum(cand.values()) else None
    n = sum(cand.values())
    verdict = judged_gate("max_class_shift_psi", CLASS_SHIFT, psi, limit, n, monitors, min_n=1)
    return verdict


def _confidence_drift(
    evidence: StepEvidence, gates: RolloutGates, monitors: MonitorsConfig
) -> GateVerdict | None:
    limit = gates.max_confidence_psi
    if limit is None:
        return None
    base, cand = evidence.baseline, evidence.candidate
    psi = None
    if len(base.confidences) and len(cand.confidences):
        reference, current = base.histogram(), cand.histogram()
        drift = confidence_drift(
            reference, current, reference.quantiles(), monitors.low_confidence_cutoff
        )
        psi = drift["psi"]
    n = len(cand.confidences)
    return judged_gate("max_confidence_psi", CONFIDENCE_DRIFT, psi, limit, n, monitors, min_n=1)


def _disagreement(evidence: StepEvidence, gates: RolloutGates) -> GateVerdict | None:
    limit = gates.max_disagreement
    if limit is None or gates.replay_sample == 0:
        return None
    replay = evidence.replay
    if isinstance(replay, InputsNotStored):
        return None
    if replay is None or replay.agreement is None:
        n = 0 if replay is None else replay.n
        nothing = {"reason": NOTHING_REPLAYED}
        return GateVerdict("max_disagreement", None, limit, n, False, INSUFFICIENT, nothing)
    answered = sum(sum(row.values()) for row in replay.confusion.values())
    agreed = sum(row.get(cls, 0) for cls, row in replay.confusion.items())
    details: dict[str, Any] = {
        "replayed": replay.n,
        "schema_failure_rate": replay.schema_failure_rate,
        "confusion": replay.confusion,
    }
    return _share_above("max_disagreement", answered - agreed, answered, limit, details)


def _share_above(
    gate: str, hits: int, n: int, limit: float, details: dict[str, Any]
) -> GateVerdict:
    """A share fails only when its whole 95 % interval is above `limit`: a small canary is not
    failed on a few unlucky rows (2 of 93 is no evidence against 1 %), a broken one is."""
    interval = wilson_interval(hits, n)
    if interval is None:
        return GateVerdict(gate, None, limit, n, False, INSUFFICIENT, details)
    held = interval[0] <= limit
    status = "ok" if held else "failed"
    found = {**details, "hits": hits, "interval_95": list(interval)}
    return GateVerdict(gate, hits / n, limit, n, held, status, found)


def _with(verdict: GateVerdict, **extra: Any) -> GateVerdict:
    return replace(verdict, details={**verdict.details, **extra})
