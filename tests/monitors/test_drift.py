"""Confidence drift from binned counts against scipy on the raw samples."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitors.drift import METRICS, confidence_drift
from monitors.histograms import FINE_EDGES, ConfidenceHistogram, baseline_anchors, on_fine_grid
from tests.monitors.samples import confidences, deciles, grid_for, histogram

CUTOFF = 0.5
REFERENCE = confidences(20_000, 8, 2, seed=1)
SHIFTED = confidences(15_000, 5, 2.5, seed=2)
SAME = confidences(15_000, 8, 2, seed=3)
# Binning moves each value at most half a fine bin; the largest fine-bin mass of these samples
# bounds the KS error.
BIN_WIDTH = 1 / 200


def _drift(reference: np.ndarray, current: np.ndarray):
    quantiles = deciles(reference)
    grid = grid_for(quantiles, cutoff=CUTOFF)
    return quantiles, confidence_drift(
        histogram(reference, grid), histogram(current, grid), quantiles, CUTOFF
    )


def test_reports_every_metric_with_sample_sizes():
    _, drift = _drift(REFERENCE, SHIFTED)
    assert set(drift) == set(METRICS)
    assert drift["psi"].details["current_n"] == len(SHIFTED)
    assert len(drift["psi"].details["bins"]) == 10


def test_psi_and_js_on_reference_deciles_match_the_raw_samples():
    quantiles, drift = _drift(REFERENCE, SHIFTED)
    snapped = on_fine_grid(quantiles)  # the deciles as drift bins them: on the fine grid
    assert [row["low"] for row in drift["psi"].details["bins"]] == snapped[:-1].tolist()
    ref, _ = np.histogram(REFERENCE, snapped)
    cur, _ = np.histogram(SHIFTED, snapped)
    p, q = ref / ref.sum(), cur / cur.sum()
    assert drift["psi"].value == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=1e-9)
    assert drift["js_distance"].value == pytest.approx(jensenshannon(p, q), rel=1e-9)


def test_ks_and_wasserstein_are_within_bin_resolution_of_scipy_on_raw_samples():
    _, drift = _drift(REFERENCE, SHIFTED)
    largest_bin_mass = max(
        np.histogram(sample, FINE_EDGES)[0].max() / len(sample) for sample in (REFERENCE, SHIFTED)
    )
    raw_ks = stats.ks_2samp(REFERENCE, SHIFTED).statistic
    assert abs(drift["ks_statistic"].value - raw_ks) <= largest_bin_mass
    raw_w = stats.wasserstein_distance(REFERENCE, SHIFTED) / REFERENCE.std()
    assert drift["wasserstein_normalized"].value == pytest.approx(
        raw_w, abs=BIN_WIDTH / REFERENCE.std()
    )


def test_mean_drop_and_low_confidence_share():
    _, drift = _drift(REFERENCE, SHIFTED)
    expected_drop = REFERENCE.mean() - SHIFTED.mean()
    assert drift["mean_confidence_drop"].value == pytest.approx(expected_drop, abs=BIN_WIDTH / 2)
    assert drift["low_confidence_share"].value == pytest.approx(np.mean(SHIFTED < CUTOFF))


def test_a_shift_crosses_the_default_alert_levels_and_a_resample_does_not():
    _, shifted = _drift(REFERENCE, SHIFTED)
    _, same = _drift(REFERENCE, SAME)
    assert shifted["psi"].value > 0.25
    assert shifted["wasserstein_normalized"].value > 0.25
    assert same["psi"].value < 0.01
    assert same["ks_statistic"].value < 0.03
    assert abs(same["mean_confidence_drop"].value) < 0.005


def test_each_metric_carries_the_two_sample_test_that_judges_it():
    quantiles, shifted = _drift(REFERENCE, SHIFTED)
    _, same = _drift(REFERENCE, SAME)
    tests = {metric: m.details["test"] for metric, m in shifted.items()}
    assert tests == {
        "psi": "chi_square_homogeneity",
        "js_distance": "chi_square_homogeneity",
        "ks_statistic": "ks_two_sample",
        "wasserstein_normalized": "ks_two_sample",
        "mean_confidence_drop": "welch_z_one_sided",
        "low_confidence_share": "two_proportion_z_one_sided",
    }
    ref, _ = np.histogram(REFERENCE, on_fine_grid(quantiles))
    cur, _ = np.histogram(SHIFTED, on_fine_grid(quantiles))
    expected = stats.chi2_contingency([ref, cur], correction=False)
    assert shifted["psi"].details["test_statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert shifted["psi"].details["p_value"] == pytest.approx(expected.pvalue, abs=1e-300)
    assert all(m.details["p_value"] < 1e-12 for m in shifted.values())
    # A resample of the same distribution: no test finds a difference at 1 %.
    assert all(m.details["p_value"] > 0.01 for m in same.values())


def test_a_baseline_from_fine_counts_and_deciles_agrees_with_the_raw_reference():
    quantiles, exact = _drift(REFERENCE, SHIFTED)
    baseline = ConfidenceHistogram.from_counts(
        FINE_EDGES, np.histogram(REFERENCE, FINE_EDGES)[0], baseline_anchors(quantiles)
    )
    current = histogram(SHIFTED, grid_for(quantiles, cutoff=CUTOFF))
    approx = confidence_drift(baseline, current, quantiles, CUTOFF)
    assert approx["psi"].value == pytest.approx(exact["psi"].value, rel=0.01)
    assert approx["js_distance"].value == pytest.approx(exact["js_distance"].value, rel=0.01)
    for metric in ("ks_statistic", "wasserstein_normalized", "mean_confidence_drop"):
        assert approx[metric].value == pytest.approx(exact[metric].value, abs=2e-3)


def test_point_masses_at_one_do_not_drift_against_themselves():
    ones = np.ones(500)
    _, drift = _drift(ones, np.ones(300))
    assert drift["psi"].value == pytest.approx(0.0, abs=1e-12)
    assert drift["ks_statistic"].value == 0.0
    assert drift["wasserstein_normalized"].value == 0.0


def test_needs_data_on_both_sides():
    empty = ConfidenceHistogram.from_counts(FINE_EDGES, np.zeros(200))
    with pytest.raises(ValueError, match="both"):
        confidence_drift(empty, histogram(SAME, FINE_EDGES), [0.0, 1.0], CUTOFF)
