import numpy as np
import pytest

from service.runtime import SCHEMA_FAILURE_REASONS, check_output

CLASSES = ("billing", "technical", "account")


def test_a_valid_row_gives_the_argmax_class_and_its_probability():
    result = check_output(np.array([0.2, 0.7, 0.1], dtype=np.float32), "technical", CLASSES)
    assert result.failure is None
    assert result.predicted_class == "technical"
    assert result.confidence == pytest.approx(0.7)
    assert result.probabilities is not None
    assert set(result.probabilities) == set(CLASSES)


@pytest.mark.parametrize(
    ("row", "label", "reason"),
    [
        ([0.5, 0.5], "billing", "shape"),
        ([np.nan, 0.5, 0.5], "billing", "non_finite"),
        ([np.inf, 0.0, 0.0], "billing", "non_finite"),
        ([1.5, -0.5, 0.0], "billing", "out_of_range"),
        ([0.5, 0.3, 0.1], "billing", "not_normalized"),
        ([0.6, 0.3, 0.1], "refunds", "unknown_class"),
    ],
)
def test_broken_rows_name_the_rule_they_break(row, label, reason):
    result = check_output(np.array(row, dtype=np.float32), label, CLASSES)
    assert result.failure == reason
    assert result.predicted_class is None
    assert reason in SCHEMA_FAILURE_REASONS


def test_rounding_noise_within_tolerance_passes():
    row = np.array([0.3334, 0.3333, 0.3336], dtype=np.float32)
    assert check_output(row, "account", CLASSES).failure is None
