"""A replay's comparison of a candidate version with the versions that answered (pure).

Each replayed item was scored twice, by the version that answered it in production and by the
candidate; the comparison is computed over all items and per tenant, and judged against the
configured gates. Class shift and confidence drift reuse the monitors' measurements and their
sample-size-aware judging: the two scorings of one input are paired, and the monitors' tests
treat them as independent samples, which only makes a gate slower to fail (never faster).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.config import MonitorsConfig, ReplayGates, Threshold
from core.contracts import ALL
from monitors.class_shift import class_shift
from monitors.drift import confidence_drift
from monitors.histograms import FINE_EDGES, ConfidenceHistogram
from monitors.results import Measurement, json_safe
from monitors.thresholds import judge

# The columns of the scored items the comparison reads (one row per replayed input).
ITEM_COLUMNS = (
    "tenant",
    "stored_class",
    "baseline_class",
    "baseline_confidence",
    "baseline_failure",
    "baseline_ms",
    "candidate_class",
    "candidate_confidence",
    "candidate_failure",
    "candidate_ms",
)
# The candidate's column in the confusion table for items whose output broke the schema.
SCHEMA_FAILURE = "(schema failure)"
# Two-sided 95 % for the agreement's Wilson interval.
Z_95 = 1.959964
SIDES = ("baseline", "candidate")
# A gate's outcome: it held, it failed, or too few items to judge.
GateOutcome = Literal["pass", "fail", "insufficient_data"]


@dataclass(frozen=True)
class Comparison:
    """The comparison of one group of replayed items (all of them, or one tenant's)."""

    n: int
    agreement: float | None
    agreement_interval: tuple[float, float] | None
    reproduced: float | None
    confusion: dict[str, dict[str, int]]
    class_counts: dict[str, dict[str, int]]
    class_shift: dict[str, Measurement] | None
    confidence_drift: dict[str, Measurement] | None
    schema_failures: dict[str, dict[str, int]]
    schema_failure_rate: float | None
    latency_ms: dict[str, dict[str, float]]
    confidences: dict[str, list[float]] = field(repr=False, default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types (the measurements with their details)."""
        found: dict[str, Any] = json_safe(
            {
                "n": self.n,
                "agreement": self.agreement,
                "agreement_interval_95": self.agreement_interval,
                "baseline_reproduces_stored_class": self.reproduced,
                "confusion": self.confusion,
                "class_counts": self.class_counts,
                "class_shift": _measurements_json(self.class_shift),
                "confidence_drift": _measurements_json(self.confidence_drift),
                "schema_failures": self.schema_failures,
                "schema_failure_rate": self.schema_failure_rate,
                "latency_ms": self.latency_ms,
            }
        )
        return found


@dataclass(frozen=True)
class GateVerdict:
    """One gate on the whole replay: its value, limit, sample size and whether it held."""

    gate: str
    value: float | None
    limit: float
    n: int
    passed: bool
    status: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> GateOutcome:
        """pass, fail, or insufficient_data (too few items to judge)."""
        if self.passed:
            return "pass"
        return "insufficient_data" if self.status == "insufficient_data" else "fail"

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = json_safe(
            {
                "gate": self.gate,
                "verdict": self.verdict,
                "value": self.value,
                "limit": self.limit,
                "n": self.n,
                "passed": self.passed,
                "status": self.status,
                "details": self.details,
            }
        )
        return found


def compare_by_tenant(
    items: pd.DataFrame, classes: list[str], low_confidence_cutoff: float
) -> dict[str, Comparison]:
    """The comparison of every item (under `*`) and of each tenant's, tenants sorted."""
    groups = {ALL: items}
    groups.update({str(t): rows for t, rows in sorted(items.groupby("tenant"))})
    return {key: compare(rows, classes, low_confidence_cutoff) for key, rows in groups.items()}


def compare(items: pd.DataFrame, classes: list[str], low_confidence_cutoff: float) -> Comparison:
    """Agreement, confusion, class shift, confidence drift, schema failures and latency."""
    answered = items[items["baseline_failure"].isna()]
    agree = int((answered["candidate_class"] == answered["baseline_class"]).sum())
    reproduced = answered["baseline_class"] == answered["stored_class"]
    counts = {side: _class_counts(items, side, classes) for side in SIDES}
    confidences = {side: _confidences(items, side) for side in SIDES}
    failed = items["candidate_failure"].notna().sum()
    return Comparison(
        n=len(items),
        agreement=_ratio(agree, len(answered)),
        agreement_interval=wilson_interval(agree, len(answered)),
        reproduced=_ratio(int(reproduced.sum()), len(answered)),
        confusion=confusion(answered),
        class_counts=counts,
        class_shift=_class_shift(counts, classes),
        confidence_drift=_confidence_drift(confidences, low_confidence_cutoff),
        schema_failures={side: _failure_reasons(items, side) for side in SIDES},
        schema_failure_rate=_ratio(int(failed), len(items)),
        latency_ms={side: _latency(items[f"{side}_ms"]) for side in SIDES},
        confidences=confidences,
    )


def confusion(answered: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts by the answering version's class (rows) and the candidate's (columns)."""
    if answered.empty:
        return {}
    candidate = answered["candidate_class"].where(
        answered["candidate_failure"].isna(), SCHEMA_FAILURE
    )
    table: dict[str, dict[str, int]] = {}
    for (row, column), count in pd.crosstab(answered["baseline_class"], candidate).stack().items():
        if count:
            table.setdefault(str(row), {})[str(column)] = int(count)
    return table


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (None without trials)."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def judge_gates(
    comparison: Comparison, gates: ReplayGates, monitors: MonitorsConfig
) -> list[GateVerdict]:
    """The configured gates on the whole replay's comparison (unset gates are left out)."""
    verdicts: list[GateVerdict] = []
    n = comparison.n
    if gates.min_agreement is not None:
        value = comparison.agreement
        held = value is not None and value >= gates.min_agreement
        verdicts.append(_floor_verdict("min_agreement", value, gates.min_agreement, n, held))
    if gates.max_schema_failure_rate is not None:
        value = comparison.schema_failure_rate
        held = value is not None and value <= gates.max_schema_failure_rate
        most = gates.max_schema_failure_rate
        verdicts.append(_floor_verdict("max_schema_failure_rate", value, most, n, held))
    drift = (
        ("max_class_shift_psi", "class_shift", comparison.class_shift, gates.max_class_shift_psi),
        (
            "max_confidence_psi",
            "confidence_drift",
            comparison.confidence_drift,
            gates.max_confidence_psi,
        ),
    )
    for gate, monitor, measurements, limit in drift:
        if limit is not None:
            psi = None if measurements is None else measurements["psi"]
            verdicts.append(judged_gate(gate, monitor, psi, limit, n, monitors))
    return verdicts


def _floor_verdict(gate: str, value: float | None, limit: float, n: int, held: bool) -> GateVerdict:
    status = "insufficient_data" if value is None else ("ok" if held else "failed")
    return GateVerdict(gate, value, limit, n, held, status)


def judged_gate(
    gate: str,
    monitor: str,
    measurement: Measurement | None,
    limit: float,
    n: int,
    monitors: MonitorsConfig,
    min_n: int | None = None,
    metric: str = "psi",
) -> GateVerdict:
    """A measurement (PSI by default) at or above `limit` fails when the two-sample test it
    carries rejects at the warn false-alarm rate (monitors.thresholds.judge); below `min_n`
    items (default: the monitors' minimum) it is not judged."""
    if measurement is None:
        return GateVerdict(gate, None, limit, n, False, "insufficient_data")
    floors = {**monitors.thresholds, monitor: {metric: Threshold(warn=limit, alert=limit)}}
    config = monitors.model_copy(update={"thresholds": floors, "overrides": []})
    least = monitors.min_predictions if min_n is None else min_n
    sufficient = n >= least
    verdict = judge(config, monitor, metric, measurement, sufficient)
    details = {**verdict.details, **_test_details(measurement)}
    if not sufficient:
        details["min_predictions"] = least
    passed = verdict.status == "ok"
    return GateVerdict(gate, measurement.value, limit, n, passed, verdict.status, details)


def _test_details(measurement: Measurement) -> dict[str, Any]:
    keys = ("test", "p_value", "reference_n", "current_n")
    return {k: measurement.details[k] for k in keys if k in measurement.details}


def _class_counts(items: pd.DataFrame, side: str, classes: list[str]) -> dict[str, int]:
    answered = items.loc[items[f"{side}_failure"].isna(), f"{side}_class"]
    found = answered.value_counts()
    return {c: int(found.get(c, 0)) for c in sorted(set(classes) | set(found.index))}


def _confidences(items: pd.DataFrame, side: str) -> list[float]:
    answered = items.loc[items[f"{side}_failure"].isna(), f"{side}_confidence"]
    return [float(v) for v in answered]


def _class_shift(
    counts: Mapping[str, Mapping[str, int]], classes: list[str]
) -> dict[str, Measurement] | None:
    if not sum(counts["baseline"].values()) or not sum(counts["candidate"].values()):
        return None
    return class_shift(counts["baseline"], counts["candidate"], classes)


def _confidence_drift(
    confidences: Mapping[str, list[float]], cutoff: float
) -> dict[str, Measurement] | None:
    if not confidences["baseline"] or not confidences["candidate"]:
        return None
    reference, current = (_histogram(confidences[side]) for side in SIDES)
    return confidence_drift(reference, current, reference.quantiles(), cutoff)


def _histogram(values: list[float]) -> ConfidenceHistogram:
    counts, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=FINE_EDGES)
    return ConfidenceHistogram.from_counts(FINE_EDGES, counts)


def _failure_reasons(items: pd.DataFrame, side: str) -> dict[str, int]:
    found = items[f"{side}_failure"].dropna().value_counts()
    return {str(reason): int(count) for reason, count in sorted(found.items())}


def _latency(values: pd.Series) -> dict[str, float]:
    if values.empty:
        return {}
    array = values.to_numpy(dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _measurements_json(measurements: Mapping[str, Measurement] | None) -> Any:
    if measurements is None:
        return None
    return {
        name: {"value": m.value, "details": dict(m.details)} for name, m in measurements.items()
    }
