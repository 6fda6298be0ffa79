"""Parity of the exported model: ONNX Runtime must reproduce scikit-learn's probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PARITY_TOLERANCE = 1e-5
_EXCERPT_CHARS = 160


@dataclass(frozen=True)
class ParityReport:
    """How far ONNX Runtime is from scikit-learn on the held-out rows."""

    n: int
    max_abs_diff: float
    worst_row: int
    rows_over_tolerance: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.rows_over_tolerance == 0

    def as_metadata(self) -> dict[str, Any]:
        return {"n": self.n, "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance}


class ParityError(Exception):
    """The exported model disagrees with the fitted one; the message shows the worst row."""

    def __init__(self, message: str, report: ParityReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def compare_probabilities(
    expected: np.ndarray,
    actual: np.ndarray,
    inputs: Sequence[Any],
    classes: Sequence[str],
    *,
    model_name: str,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityReport:
    """Report on |expected - actual| per row; raises ParityError beyond `tolerance`."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape or expected.shape != (len(inputs), len(classes)):
        raise ParityError(
            f"{model_name}: ONNX probabilities have shape {actual.shape}, scikit-learn's "
            f"{expected.shape}, expected ({len(inputs)}, {len(classes)})"
        )
    # NaN compares false everywhere: count it as an infinite difference.
    row_diff = np.nan_to_num(np.abs(expected - actual), nan=np.inf).max(axis=1)
    worst = int(np.argmax(row_diff))
    report = ParityReport(
        n=len(inputs),
        max_abs_diff=float(row_diff[worst]),
        worst_row=worst,
        rows_over_tolerance=int(np.sum(row_diff > tolerance)),
        tolerance=tolerance,
    )
    if not report.passed:
        raise ParityError(_describe(report, expected, actual, inputs, classes, model_name), report)
    return report


def _describe(
    report: ParityReport,
    expected: np.ndarray,
    actual: np.ndarray,
    inputs: Sequence[Any],
    classes: Sequence[str],
    model_name: str,
) -> str:
    row = report.worst_row
    value = inputs[row]
    shown = repr(value if not isinstance(value, str) else value[:_EXCERPT_CHARS])
    return (
        f"{model_name}: ONNX Runtime and scikit-learn probabilities differ by up to "
        f"{report.max_abs_diff:.3g} (tolerance {report.tolerance:g}) on "
        f"{report.rows_over_tolerance} of {report.n} held-out rows; worst row {row}: "
        f"input={shown} scikit-learn={_rounded(expected[row], classes)} "
        f"onnx={_rounded(actual[row], classes)}"
    )


def _rounded(row: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    return {name: round(float(p), 6) for name, p in zip(classes, row, strict=True)}
