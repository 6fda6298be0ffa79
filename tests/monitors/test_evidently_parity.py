"""Parity with Evidently's ValueDrift when it is given the same method and the same bins."""

import numpy as np
import pandas as pd
import pytest

from monitors.class_shift import class_shift
from monitors.drift import confidence_drift
from monitors.histograms import on_fine_grid
from tests.monitors.samples import bin_midpoints, confidences, deciles, grid_for, histogram

CUTOFF = 0.5
# Sizes above 10,000 make scipy's ks_2samp (inside Evidently) use the asymptotic p-value.
REFERENCE = confidences(12_000, 8, 2, seed=21)
CURRENT = confidences(11_000, 6, 2, seed=22)
CLASSES = ["account", "billing", "other", "shipping", "technical"]
REF_CLASSES = np.random.default_rng(23).choice(CLASSES, 12_000, p=[0.2, 0.3, 0.1, 0.15, 0.25])
# "other" never predicted now: exercises the empty-bin epsilon on both sides.
CUR_CLASSES = np.random.default_rng(24).choice(CLASSES, 11_000, p=[0.25, 0.35, 0.0, 0.1, 0.3])
TOLERANCE = 1e-9


def _frame(confidence: np.ndarray, classes: np.ndarray, quantiles, grid) -> pd.DataFrame:
    bins = np.clip(np.searchsorted(quantiles, confidence, side="right") - 1, 0, len(quantiles) - 2)
    return pd.DataFrame(
        {
            "confidence_bin": [f"q{b:02d}" for b in bins],
            "confidence": bin_midpoints(confidence, grid),
            "predicted_class": classes,
        }
    )


@pytest.fixture(scope="module")
def evidently_values():
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    quantiles = deciles(REFERENCE)
    grid = grid_for(quantiles, cutoff=CUTOFF)
    bins = on_fine_grid(quantiles)  # the decile bins as drift counts them: snapped to the grid
    definition = DataDefinition(
        numerical_columns=["confidence"], categorical_columns=["confidence_bin", "predicted_class"]
    )
    metrics = {
        "confidence_psi": ValueDrift(column="confidence_bin", method="psi"),
        "confidence_js": ValueDrift(column="confidence_bin", method="jensenshannon"),
        "confidence_wasserstein": ValueDrift(column="confidence", method="wasserstein"),
        "confidence_ks_pvalue": ValueDrift(column="confidence", method="ks"),
        "class_psi": ValueDrift(column="predicted_class", method="psi"),
        "class_js": ValueDrift(column="predicted_class", method="jensenshannon"),
    }
    snapshot = Report(list(metrics.values())).run(
        Dataset.from_pandas(_frame(CURRENT, CUR_CLASSES, bins, grid), definition),
        Dataset.from_pandas(_frame(REFERENCE, REF_CLASSES, bins, grid), definition),
    )
    values = [m["value"] for m in snapshot.dict()["metrics"]]
    return dict(zip(metrics, values, strict=True))


@pytest.fixture(scope="module")
def ours():
    quantiles = deciles(REFERENCE)
    grid = grid_for(quantiles, cutoff=CUTOFF)
    drift = confidence_drift(
        histogram(REFERENCE, grid), histogram(CURRENT, grid), quantiles, CUTOFF
    )
    ref_counts = dict(zip(*np.unique(REF_CLASSES, return_counts=True), strict=True))
    cur_counts = dict(zip(*np.unique(CUR_CLASSES, return_counts=True), strict=True))
    shift = class_shift(ref_counts, cur_counts, CLASSES)
    return drift, shift


def test_confidence_psi_and_js(evidently_values, ours):
    drift, _ = ours
    assert drift["psi"].value == pytest.approx(evidently_values["confidence_psi"], rel=TOLERANCE)
    assert drift["js_distance"].value == pytest.approx(
        evidently_values["confidence_js"], rel=TOLERANCE
    )


def test_confidence_wasserstein_normalized(evidently_values, ours):
    drift, _ = ours
    assert drift["wasserstein_normalized"].value == pytest.approx(
        evidently_values["confidence_wasserstein"], rel=TOLERANCE
    )


def test_confidence_ks_pvalue(evidently_values, ours):
    drift, _ = ours
    expected = evidently_values["confidence_ks_pvalue"]
    assert drift["ks_statistic"].details["p_value"] == pytest.approx(expected, rel=1e-6, abs=1e-300)


def test_class_shift_psi_and_js(evidently_values, ours):
    _, shift = ours
    assert shift["psi"].value == pytest.approx(evidently_values["class_psi"], rel=TOLERANCE)
    assert shift["js_distance"].value == pytest.approx(evidently_values["class_js"], rel=TOLERANCE)
