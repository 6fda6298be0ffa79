"""A replay's comparison and gates, on seeded scorings of the two versions."""

import numpy as np
import pandas as pd
import pytest

from core.config import MonitorsConfig, ReplayGates
from core.contracts import ALL
from monitors.replay_compare import (
    ITEM_COLUMNS,
    SCHEMA_FAILURE,
    compare,
    compare_by_tenant,
    judge_gates,
    wilson_interval,
)

CLASSES = ["account", "billing", "other", "shipping", "technical"]
GATES = ReplayGates(
    min_agreement=0.9,
    max_schema_failure_rate=0.001,
    max_class_shift_psi=0.05,
    max_confidence_psi=0.25,
)


def scored(n, seed=3, moved=0.0, failures=0, confidence_shift=0.0):
    """n items answered identically by both versions, then `moved` of them relabelled to
    `other` by the candidate, `failures` of them failing its output schema."""
    rng = np.random.default_rng(seed)
    baseline = rng.choice(CLASSES, size=n)
    confidence = rng.beta(6, 2, size=n)
    candidate = baseline.copy()
    relabel = rng.random(n) < moved
    candidate[relabel] = "other"
    frame = pd.DataFrame(
        {
            "tenant": rng.choice(["acme", "globex"], size=n),
            "stored_class": baseline,
            "baseline_class": baseline,
            "baseline_confidence": confidence,
            "baseline_failure": None,
            "baseline_ms": rng.uniform(0.1, 0.3, size=n),
            "candidate_class": candidate,
            "candidate_confidence": np.clip(confidence - confidence_shift, 0.0, 1.0),
            "candidate_failure": None,
            "candidate_ms": rng.uniform(0.2, 0.6, size=n),
        }
    )[list(ITEM_COLUMNS)]
    failed = frame.index < failures
    frame.loc[failed, ["candidate_class", "candidate_confidence"]] = None
    frame.loc[failed, "candidate_failure"] = "not_normalized"
    return frame


def test_a_candidate_answering_like_the_baseline_agrees_fully_and_passes_every_gate():
    items = scored(500)
    result = compare(items, CLASSES, 0.5)
    assert result.n == 500
    assert result.agreement == 1.0
    assert result.reproduced == 1.0
    assert result.schema_failure_rate == 0.0
    assert all(set(row) == {name} for name, row in result.confusion.items())
    assert result.class_shift["psi"].value == pytest.approx(0.0, abs=1e-12)
    assert result.confidence_drift["psi"].value == pytest.approx(0.0, abs=1e-12)
    verdicts = judge_gates(result, GATES, MonitorsConfig())
    assert [v.gate for v in verdicts] == [
        "min_agreement",
        "max_schema_failure_rate",
        "max_class_shift_psi",
        "max_confidence_psi",
    ]
    assert all(v.passed for v in verdicts)


def test_agreement_confusion_and_schema_failures_count_the_items_exactly():
    items = scored(1000, moved=0.3, failures=7)
    result = compare(items, CLASSES, 0.5)
    same = (items["candidate_class"] == items["baseline_class"]).sum()
    assert result.agreement == same / 1000
    assert result.schema_failure_rate == 7 / 1000
    assert result.schema_failures == {"baseline": {}, "candidate": {"not_normalized": 7}}
    assert sum(row.get(SCHEMA_FAILURE, 0) for row in result.confusion.values()) == 7
    assert sum(sum(row.values()) for row in result.confusion.values()) == 1000
    moved_to_other = result.confusion["billing"].get("other", 0)
    assert moved_to_other > 0
    low, high = result.agreement_interval
    assert low < result.agreement < high
    verdicts = {v.gate: v for v in judge_gates(result, GATES, MonitorsConfig())}
    assert not verdicts["min_agreement"].passed
    assert not verdicts["max_schema_failure_rate"].passed
    assert not verdicts["max_class_shift_psi"].passed
    assert verdicts["max_class_shift_psi"].status in ("warn", "alert")


def test_the_class_shift_gate_needs_the_sample_to_tell_the_shift_from_noise():
    """The same share shift fails with 5,000 items, not with 60 (its test cannot reject)."""
    monitors = MonitorsConfig(min_predictions=10)
    gates = ReplayGates(max_class_shift_psi=0.05)
    verdicts = {}
    for n in (60, 5000):
        result = compare(scored(n, seed=11, moved=0.15), CLASSES, 0.5)
        assert result.class_shift["psi"].value >= 0.05
        (verdicts[n],) = judge_gates(result, gates, monitors)
    assert verdicts[5000].passed is False
    assert verdicts[5000].details["p_value"] < 0.001
    assert verdicts[60].passed is True
    assert verdicts[60].details["p_value"] > 0.01


def test_drift_gates_fail_below_the_minimum_sample_and_without_answers():
    small = compare(scored(20), CLASSES, 0.5)
    (verdict,) = judge_gates(small, ReplayGates(max_confidence_psi=0.25), MonitorsConfig())
    assert verdict.status == "insufficient_data"
    assert not verdict.passed
    empty = compare(scored(0), CLASSES, 0.5)
    verdicts = judge_gates(empty, GATES, MonitorsConfig())
    assert [v.status for v in verdicts] == ["insufficient_data"] * 4


def test_a_confidence_drop_fails_the_confidence_gate():
    result = compare(scored(2000, confidence_shift=0.2), CLASSES, 0.5)
    gates = ReplayGates(max_confidence_psi=0.25)
    (verdict,) = judge_gates(result, gates, MonitorsConfig())
    assert verdict.value > 0.25
    assert not verdict.passed
    assert result.confidence_drift["mean_confidence_drop"].value == pytest.approx(0.2, abs=0.02)


def test_comparisons_cover_every_item_then_each_tenant():
    items = scored(300, moved=0.2)
    found = compare_by_tenant(items, CLASSES, 0.5)
    assert list(found) == [ALL, "acme", "globex"]
    assert found["acme"].n + found["globex"].n == found[ALL].n == 300
    acme = items[items["tenant"] == "acme"]
    same = (acme["candidate_class"] == acme["baseline_class"]).mean()
    assert found["acme"].agreement == pytest.approx(same)
    assert set(found[ALL].latency_ms["candidate"]) == {"mean", "p50", "p95", "max"}
    assert found[ALL].latency_ms["candidate"]["p95"] > found[ALL].latency_ms["baseline"]["p95"]
    assert found[ALL].as_json()["class_shift"]["psi"]["value"] > 0


def test_the_wilson_interval_covers_the_true_agreement_about_95_percent_of_the_time():
    """Seeded: 2,000 replays of 200 items with true agreement 0.93."""
    rng = np.random.default_rng(5)
    hits = 0
    for successes in rng.binomial(200, 0.93, size=2000):
        low, high = wilson_interval(int(successes), 200)
        hits += low <= 0.93 <= high
    assert 0.93 <= hits / 2000 <= 0.97
    assert wilson_interval(0, 0) is None
