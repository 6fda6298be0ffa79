"""Re-binning histograms: exact on sub-grids, anchored at baseline deciles."""

import numpy as np
import pytest

from monitors.histograms import (
    FINE_EDGES,
    ConfidenceHistogram,
    baseline_anchors,
    normalize_edges,
    on_fine_grid,
)
from storage.rollups import coarse_bins
from tests.monitors.samples import confidences, deciles, grid_for, histogram

VALUES = confidences(5000, 6, 2, seed=11)


def test_normalize_edges_merges_float_noise_and_adds_the_ends():
    edges = normalize_edges([0.1, 0.1 + 1e-15, 0.30000000000000004, 0.3])
    assert edges.tolist() == [0.0, 0.1, 0.3, 1.0]


def test_edges_snapped_to_the_fine_grid_are_answered_by_the_rollups_fine_bins():
    snapped = on_fine_grid([0.0, 0.1234, 0.7412, 0.9961, 0.9979, 0.99999, 1.0])
    assert snapped.tolist() == [0.0, 0.125, 0.74, 0.995, 1.0]  # merged where they meet
    assert coarse_bins(snapped.tolist()) is not None
    assert coarse_bins(on_fine_grid(deciles(VALUES)).tolist()) is not None
    assert coarse_bins(deciles(VALUES).tolist()) is None  # the raw deciles are not


def test_rebinning_onto_a_subset_of_edges_is_exact():
    quantiles = deciles(VALUES)
    fine = histogram(VALUES, grid_for(quantiles))
    coarse = fine.on(quantiles)
    expected, _ = np.histogram(VALUES, bins=quantiles)
    assert coarse.counts.tolist() == expected.astype(float).tolist()


def test_quantiles_of_a_histogram_approach_the_sample_deciles():
    got = histogram(VALUES, FINE_EDGES).quantiles()
    assert np.max(np.abs(got - deciles(VALUES))) < 0.005  # one fine bin


def test_anchors_put_a_tenth_of_the_mass_between_baseline_deciles():
    quantiles = deciles(VALUES)
    baseline = ConfidenceHistogram.from_counts(
        FINE_EDGES, np.histogram(VALUES, FINE_EDGES)[0], baseline_anchors(quantiles)
    )
    shares = baseline.on(quantiles).counts / baseline.n
    assert shares == pytest.approx(np.full(10, 0.1), abs=1e-3)
    assert baseline.on(quantiles).n == pytest.approx(len(VALUES))


def test_anchors_are_clipped_into_the_bin_they_fall_in():
    histogram_ = ConfidenceHistogram.from_counts([0.0, 0.5, 1.0], [10, 90], {0.25: 0.9})
    assert histogram_.cumulative_at([0.25]).tolist() == [10.0]


def test_rejects_inconsistent_histograms():
    with pytest.raises(ValueError, match="edges"):
        ConfidenceHistogram.from_counts([0.0, 0.5, 1.0], [1, 2, 3])
    with pytest.raises(ValueError, match="increasing"):
        ConfidenceHistogram.from_counts([0.0, 0.5, 0.5], [1, 2])
