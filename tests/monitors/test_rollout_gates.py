"""The canary gates on seeded windows: a candidate like its baseline passes, one that errs more,
answers slower or classes at random fails the gate that measures it, and too few rows cannot
be judged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import MonitorsConfig, RolloutGates
from monitors.replay_compare import ITEM_COLUMNS, compare
from monitors.rollout_gates import (
    ROW_COLUMNS,
    InputsNotStored,
    StepEvidence,
    judge_step,
    step_verdict,
    version_window,
)

CLASSES = ("account", "billing", "other", "shipping", "technical")
SHARES = (0.3, 0.25, 0.1, 0.15, 0.2)
# A model that learnt noise answers mostly the commonest training class.
NOISE_SHARES = (0.1, 0.1, 0.5, 0.1, 0.2)
GATES = RolloutGates()
MONITORS = MonitorsConfig()


def _rows(
    version: str,
    n: int,
    seed: int,
    *,
    error_rate: float = 0.01,
    latency_scale: float = 1.0,
    random_classes: bool = False,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    failed = rng.permutation(np.arange(n) < round(error_rate * n))  # exactly that share
    shares = np.array(NOISE_SHARES if random_classes else SHARES)
    confidence = rng.beta(2, 5, n) if random_classes else rng.beta(8, 2, n)
    return pd.DataFrame(
        {
            "model_version": version,
            "status": np.where(failed, "model_error", "ok"),
            "latency_ms": rng.lognormal(np.log(20.0 * latency_scale), 0.3, n),
            "predicted_class": np.where(failed, None, rng.choice(CLASSES, n, p=shares)),
            "confidence": np.where(failed, np.nan, confidence),
        }
    )[list(ROW_COLUMNS)]


def _replay(n: int, seed: int, disagree: float) -> pd.DataFrame:
    """Replayed items where the candidate picks another class for a `disagree` share."""
    rng = np.random.default_rng(seed)
    baseline = rng.choice(CLASSES, n, p=SHARES)
    other = rng.choice(CLASSES, n)
    candidate = np.where(rng.random(n) < disagree, other, baseline)
    return pd.DataFrame(
        {
            "tenant": "acme",
            "stored_class": baseline,
            "baseline_class": baseline,
            "baseline_confidence": rng.beta(8, 2, n),
            "baseline_failure": None,
            "baseline_ms": 1.0,
            "candidate_class": candidate,
            "candidate_confidence": rng.beta(8, 2, n),
            "candidate_failure": None,
            "candidate_ms": 1.0,
        }
    )[list(ITEM_COLUMNS)]


def _judge(candidate: pd.DataFrame, disagree: float = 0.02, replayed: int = 200, gates=GATES):
    rows = pd.concat([_rows("base", 4000, seed=1), candidate])
    evidence = StepEvidence(
        baseline=version_window(rows, "base"),
        candidate=version_window(rows, "cand"),
        replay=compare(_replay(replayed, seed=3, disagree=disagree), list(CLASSES), 0.5),
    )
    verdicts = judge_step(evidence, gates, MONITORS)
    return {v.gate: v for v in verdicts}, step_verdict(verdicts)


def _failing(verdicts) -> set[str]:
    return {gate for gate, v in verdicts.items() if v.verdict == "fail"}


def test_a_candidate_like_its_baseline_passes_every_gate():
    verdicts, overall = _judge(_rows("cand", 400, seed=2))
    assert overall == "pass"
    assert set(verdicts) == {
        "max_error_rate_increase",
        "max_p99_latency_ratio",
        "max_schema_failure_rate",
        "max_class_shift_psi",
        "max_confidence_psi",
        "max_disagreement",
    }
    assert all(v.verdict == "pass" for v in verdicts.values())
    assert verdicts["max_class_shift_psi"].n == verdicts["max_confidence_psi"].n
    assert verdicts["max_error_rate_increase"].n == 400


def test_a_candidate_that_errs_more_fails_the_error_and_schema_gates():
    verdicts, overall = _judge(_rows("cand", 400, seed=2, error_rate=0.12))
    assert overall == "fail"
    assert _failing(verdicts) == {"max_error_rate_increase", "max_schema_failure_rate"}
    rise = verdicts["max_error_rate_increase"]
    assert rise.value == pytest.approx(0.11, abs=0.04)
    assert rise.details["p_value"] < 0.001


def test_a_slower_candidate_fails_the_latency_gate_only():
    verdicts, overall = _judge(_rows("cand", 400, seed=2, latency_scale=2.5))
    assert overall == "fail"
    assert _failing(verdicts) == {"max_p99_latency_ratio"}
    assert verdicts["max_p99_latency_ratio"].value == pytest.approx(2.5, rel=0.25)


def test_a_candidate_that_learnt_noise_fails_class_shift_drift_and_disagreement():
    verdicts, overall = _judge(_rows("cand", 400, seed=2, random_classes=True), disagree=0.8)
    assert overall == "fail"
    assert _failing(verdicts) == {"max_class_shift_psi", "max_confidence_psi", "max_disagreement"}
    low, _ = verdicts["max_disagreement"].details["interval_95"]
    assert low > GATES.max_disagreement


def test_a_rise_above_the_floor_fails_only_when_the_test_tells_it_from_noise():
    # 3 % of 100 rows against 1 % of 4000 is 2 points up, above a 1.5-point floor, but the
    # two-proportion test does not tell it from noise; 3 % of 1000 rows it does.
    gates = RolloutGates(max_error_rate_increase=0.015)
    verdicts, _ = _judge(_rows("cand", 100, seed=2, error_rate=0.03), gates=gates)
    rise = verdicts["max_error_rate_increase"]
    assert rise.value == pytest.approx(0.02)
    assert rise.details["p_value"] > MONITORS.false_alarm_rate.warn
    assert rise.verdict == "pass"
    verdicts, _ = _judge(_rows("cand", 1000, seed=2, error_rate=0.03), gates=gates)
    assert verdicts["max_error_rate_increase"].verdict == "fail"


def test_too_few_candidate_rows_are_insufficient_data_with_their_values_shown():
    verdicts, overall = _judge(_rows("cand", 40, seed=2, latency_scale=2.5))
    assert overall == "insufficient_data"
    assert {v.verdict for v in verdicts.values()} == {"insufficient_data"}
    assert verdicts["max_p99_latency_ratio"].value == pytest.approx(2.5, rel=0.35)
    assert verdicts["max_p99_latency_ratio"].details["min_candidate_rows"] == 100


def test_a_failing_gate_outweighs_one_that_cannot_judge():
    rows = pd.concat([_rows("base", 4000, seed=1), _rows("cand", 400, seed=2, error_rate=0.2)])
    evidence = StepEvidence(version_window(rows, "base"), version_window(rows, "cand"), None)
    verdicts = judge_step(evidence, GATES, MONITORS)
    by_gate = {v.gate: v.verdict for v in verdicts}
    assert by_gate["max_disagreement"] == "insufficient_data"  # nothing was replayed
    [disagreement] = [v for v in verdicts if v.gate == "max_disagreement"]
    assert "no baseline row" in disagreement.details["reason"]
    assert step_verdict(verdicts) == "fail"


def test_disagreement_is_left_out_where_the_config_stores_no_inputs_and_blocks_nothing():
    rows = pd.concat([_rows("base", 4000, seed=1), _rows("cand", 400, seed=2)])
    not_stored = InputsNotStored(rows_without_input=4000)
    evidence = StepEvidence(version_window(rows, "base"), version_window(rows, "cand"), not_stored)
    verdicts = judge_step(evidence, GATES, MONITORS)
    assert "max_disagreement" not in {v.gate for v in verdicts}
    assert step_verdict(verdicts) == "pass"
    assert "store_raw_inputs" in not_stored.reason


def test_unset_gates_are_left_out():
    gates = RolloutGates(max_p99_latency_ratio=None, max_disagreement=None)
    rows = _rows("base", 500, seed=1)
    evidence = StepEvidence(version_window(rows, "base"), version_window(rows, "base"))
    names = {v.gate for v in judge_step(evidence, gates, MONITORS)}
    assert "max_p99_latency_ratio" not in names
    assert "max_disagreement" not in names
    assert "max_error_rate_increase" in names


def test_one_slow_outlier_in_a_small_step_is_noise_but_a_slow_tail_fails():
    # Steady at 20 ms but for two requests of 500 ms: the p99 of 120 rows is nearly their
    # maximum, far above the baseline's, yet 2 of 120 above the baseline's p99 is no evidence.
    outlier = _rows("cand", 120, seed=2)
    outlier["latency_ms"] = 20.0
    outlier.loc[:1, "latency_ms"] = 500.0
    verdicts, _ = _judge(outlier)
    p99 = verdicts["max_p99_latency_ratio"]
    assert p99.value > GATES.max_p99_latency_ratio
    assert p99.verdict == "pass"
    tail = _rows("cand", 120, seed=2)
    tail.loc[:9, "latency_ms"] *= 10  # one request in twelve ten times slower
    verdicts, _ = _judge(tail)
    assert verdicts["max_p99_latency_ratio"].verdict == "fail"
    assert verdicts["max_p99_latency_ratio"].details["candidate_share_above_baseline_p99"] > 0.08
