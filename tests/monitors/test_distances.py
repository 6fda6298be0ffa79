"""The binned distances against scipy on the same bins."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitors.distances import (
    chi_square,
    js_distance,
    ks_pvalue,
    ks_statistic,
    psi,
    wasserstein,
    weighted_mean_std,
)

RNG = np.random.default_rng(3)
REF = RNG.integers(1, 500, 40).astype(float)
CUR = RNG.integers(1, 500, 40).astype(float)
POINTS = np.sort(RNG.uniform(0, 1, 40))


def test_js_distance_matches_scipy():
    assert js_distance(REF, CUR) == pytest.approx(jensenshannon(REF, CUR), abs=1e-12)
    assert js_distance(REF, REF) == pytest.approx(0.0, abs=1e-12)


def test_js_distance_of_disjoint_supports_is_sqrt_ln2():
    assert js_distance([1, 0], [0, 1]) == pytest.approx(np.sqrt(np.log(2)))


def test_wasserstein_matches_scipy_with_weights():
    expected = stats.wasserstein_distance(POINTS, POINTS, REF, CUR)
    assert wasserstein(POINTS, REF, CUR) == pytest.approx(expected, rel=1e-12)


def test_ks_statistic_and_pvalue_match_ks_2samp_on_expanded_samples():
    ref = np.repeat(POINTS, REF.astype(int))
    cur = np.repeat(POINTS, CUR.astype(int))
    result = stats.ks_2samp(ref, cur, method="asymp")
    statistic = ks_statistic(REF, CUR)
    assert statistic == pytest.approx(result.statistic, abs=1e-12)
    assert ks_pvalue(statistic, len(ref), len(cur)) == pytest.approx(result.pvalue, rel=1e-9)


def test_psi_by_definition_and_epsilon_for_empty_bins():
    p, q = REF / REF.sum(), CUR / CUR.sum()
    assert psi(REF, CUR) == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=1e-12)
    assert psi([5, 5, 0], [5, 5, 0]) == 0.0
    with_empty = psi([50, 50, 0], [40, 40, 20])
    expected = 0.1 * np.log(0.5 / 0.4) * 2 + (1e-4 - 0.2) * np.log(1e-4 / 0.2)
    assert with_empty == pytest.approx(expected, rel=1e-12)


def test_chi_square_matches_scipy():
    expected = stats.chisquare(CUR, REF / REF.sum() * CUR.sum())
    assert chi_square(REF, CUR) == pytest.approx(expected.statistic, rel=1e-9)


def test_weighted_mean_std_match_numpy():
    values = np.repeat(POINTS, REF.astype(int))
    mean, std = weighted_mean_std(POINTS, REF)
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert std == pytest.approx(values.std(), rel=1e-9)
