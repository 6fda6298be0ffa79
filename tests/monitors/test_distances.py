"""The binned distances and their two-sample tests against scipy on the same bins."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitors.distances import (
    chi_square,
    homogeneity,
    js_distance,
    ks_pvalue,
    ks_statistic,
    ks_test,
    mean_drop_test,
    pooled_table,
    psi,
    share_rise_test,
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


def test_homogeneity_matches_scipy_chi2_contingency_on_the_two_samples():
    expected = stats.chi2_contingency(np.vstack([REF, CUR]), correction=False)
    result = homogeneity(REF, CUR)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result.dof == expected.dof == len(REF) - 1
    assert result.details() == {
        "test": "chi_square_homogeneity",
        "p_value": result.p_value,
        "test_statistic": result.statistic,
        "dof": result.dof,
    }


def test_sparse_bins_are_pooled_until_the_smaller_side_expects_five():
    reference = [5000, 3000, 1900, 60, 30, 10, 0]
    current = [50, 30, 19, 1, 0, 0, 0]
    # The empty bin is dropped and the three sparse ones (0.6 .. 0.1 expected counts on the
    # current side) pooled; the pool, still sparse, joins the smallest other bin.
    table = pooled_table(reference, current)
    assert table.tolist() == [[5000, 3000, 2000], [50, 30, 20]]
    result = homogeneity(reference, current)
    expected = stats.chi2_contingency(table, correction=False)
    assert (result.statistic, result.dof) == (pytest.approx(expected.statistic, rel=1e-9), 2)


def test_homogeneity_of_one_bin_or_an_empty_side_is_not_evidence():
    assert homogeneity([10, 0], [5, 0]).p_value == 1.0
    assert homogeneity([10, 5], [0, 0]).p_value == 1.0


def test_ks_test_is_the_binned_statistic_with_its_asymptotic_p_value():
    result = ks_test(REF, CUR)
    assert result.statistic == ks_statistic(REF, CUR)
    assert result.p_value == ks_pvalue(result.statistic, REF.sum(), CUR.sum())


def test_mean_drop_test_is_welchs_statistic_one_sided():
    ref = np.repeat(POINTS, REF.astype(int))
    cur = np.repeat(POINTS, CUR.astype(int))
    expected = stats.ttest_ind(ref, cur, equal_var=False, alternative="greater")
    result = mean_drop_test(POINTS, REF, CUR)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    # The normal tail against Student's t with about 10,000 degrees of freedom.
    assert result.p_value == pytest.approx(expected.pvalue, rel=0.02, abs=1e-6)
    assert mean_drop_test(POINTS, REF, REF).p_value == pytest.approx(0.5)


def test_share_rise_test_is_the_one_sided_root_of_the_2x2_chi_square():
    expected = stats.chi2_contingency([[30, 970], [55, 945]], correction=False)
    result = share_rise_test(30, 1000, 55, 1000)
    assert result.statistic**2 == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue / 2, rel=1e-9)
    assert share_rise_test(55, 1000, 30, 1000).p_value == pytest.approx(1 - result.p_value)
    assert share_rise_test(0, 100, 0, 100).p_value == 1.0
