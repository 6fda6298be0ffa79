"""Distances between two distributions given as counts over the same bins, and the two-sample
tests that tell them from sampling noise (pure numpy and scipy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Share given to an empty bin so that PSI stays finite (Evidently fills empty bins the same way).
PSI_EPSILON = 1e-4

Floats = NDArray[np.float64]
# Columns of a contingency table are pooled while the smaller side expects fewer counts than
# this in them: the chi-square approximation of the statistic needs about 5 (Cochran's rule).
MIN_EXPECTED = 5.0


# Where a measurement's details name its test and p-value (monitors.thresholds reads them).
TEST_KEY, P_VALUE_KEY = "test", "p_value"


@dataclass(frozen=True)
class TestResult:
    """A test's statistic, p-value and degrees of freedom (0 when it has none)."""

    name: str
    statistic: float
    p_value: float
    dof: int = 0

    def details(self) -> dict[str, float | str | int]:
        """The test as a measurement's details carry it."""
        found: dict[str, float | str | int] = {
            TEST_KEY: self.name,
            P_VALUE_KEY: self.p_value,
            "test_statistic": self.statistic,
        }
        if self.dof:
            found["dof"] = self.dof
        return found


def shares(counts: ArrayLike) -> Floats:
    """Counts scaled to sum to 1 (all zeros stay zeros)."""
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    return values / total if total > 0 else values


def psi(reference: ArrayLike, current: ArrayLike, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum (p - q) * ln(p / q), empty bins at `epsilon`."""
    p = _filled(shares(reference), epsilon)
    q = _filled(shares(current), epsilon)
    return float(np.sum((p - q) * np.log(p / q)))


def _filled(values: Floats, epsilon: float) -> Floats:
    return np.where(values == 0, epsilon, values)


def js_distance(reference: ArrayLike, current: ArrayLike) -> float:
    """Jensen-Shannon distance with natural logarithms (0 .. sqrt(ln 2))."""
    p, q = shares(reference), shares(current)
    m = (p + q) / 2
    divergence = (_kl(p, m) + _kl(q, m)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def _kl(p: Floats, m: Floats) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / m[mask])))


def ks_statistic(reference: ArrayLike, current: ArrayLike) -> float:
    """Largest gap between the two cumulative distributions at the bin edges."""
    gap = np.cumsum(shares(reference)) - np.cumsum(shares(current))
    return float(np.max(np.abs(gap))) if gap.size else 0.0


def ks_pvalue(statistic: float, n_reference: float, n_current: float) -> float:
    """Two-sided asymptotic p-value, as scipy's ks_2samp computes it for large samples."""
    from scipy.stats import kstwo

    if n_reference <= 0 or n_current <= 0:
        return 1.0
    effective_n = round(n_reference * n_current / (n_reference + n_current))
    return float(np.clip(kstwo.sf(statistic, max(effective_n, 1)), 0.0, 1.0))


def wasserstein(points: ArrayLike, reference: ArrayLike, current: ArrayLike) -> float:
    """First Wasserstein distance between weights placed on increasing `points`."""
    x = np.asarray(points, dtype=np.float64)
    if x.size < 2:
        return 0.0
    gap = np.cumsum(shares(reference))[:-1] - np.cumsum(shares(current))[:-1]
    return float(np.sum(np.abs(gap) * np.diff(x)))


def weighted_mean_std(points: ArrayLike, counts: ArrayLike) -> tuple[float, float]:
    """Mean and population standard deviation of `points` weighted by `counts`."""
    weights = shares(counts)
    x = np.asarray(points, dtype=np.float64)
    if weights.sum() == 0:
        return float("nan"), float("nan")
    mean = float(np.sum(weights * x))
    variance = float(np.sum(weights * (x - mean) ** 2))
    return mean, float(np.sqrt(max(variance, 0.0)))


def chi_square(reference: ArrayLike, current: ArrayLike, epsilon: float = PSI_EPSILON) -> float:
    """Pearson's statistic of current counts against counts expected from reference shares."""
    observed = np.asarray(current, dtype=np.float64)
    expected_shares = shares(_filled(shares(reference), epsilon))
    expected = expected_shares * observed.sum()
    mask = expected > 0
    return float(np.sum((observed[mask] - expected[mask]) ** 2 / expected[mask]))


def chi_square_pvalue(statistic: float, bins: int) -> float:
    """Upper-tail probability of the chi-square statistic with bins - 1 degrees of freedom."""
    from scipy.stats import chi2

    if bins < 2:
        return 1.0
    return float(chi2.sf(statistic, bins - 1))


CHI_SQUARE_HOMOGENEITY = "chi_square_homogeneity"
KS_TWO_SAMPLE = "ks_two_sample"
MEAN_DROP_Z = "welch_z_one_sided"
SHARE_RISE_Z = "two_proportion_z_one_sided"


def homogeneity(
    reference: ArrayLike, current: ArrayLike, min_expected: float = MIN_EXPECTED
) -> TestResult:
    """Pearson's chi-square test that two count vectors are draws of one distribution.

    Both sides are samples (a 2 x bins table), so the reference's own noise is accounted for;
    sparse bins are pooled first (`pooled_table`).
    """
    from scipy.stats import chi2

    table = pooled_table(reference, current, min_expected)
    if table.shape[1] < 2:
        return TestResult(CHI_SQUARE_HOMOGENEITY, 0.0, 1.0, 0)
    # scipy's chi2_contingency(correction=False) computes the same (tests/monitors check it),
    # at several times the cost: this runs for every key and metric of every run.
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return TestResult(CHI_SQUARE_HOMOGENEITY, statistic, float(chi2.sf(statistic, dof)), dof)


def pooled_table(
    reference: ArrayLike, current: ArrayLike, min_expected: float = MIN_EXPECTED
) -> Floats:
    """The 2 x bins table without empty bins, its sparse bins pooled into one.

    A bin is sparse when the smaller side expects fewer than `min_expected` counts in it; the
    pool joins the smallest other bin while it is sparse itself.
    """
    table = np.vstack([np.asarray(reference, np.float64), np.asarray(current, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    smaller = float(table.sum(axis=1).min()) if table.size else 0.0
    if smaller <= 0:
        return table[:, :0]
    expected = smaller * table.sum(axis=0) / table.sum()
    sparse = expected < min_expected
    if not sparse.any():
        return table
    pool, rest = table[:, sparse].sum(axis=1), table[:, ~sparse]
    if smaller * pool.sum() / table.sum() < min_expected and rest.shape[1] > 0:
        smallest = int(np.argmin(rest.sum(axis=0)))
        pool = pool + rest[:, smallest]
        rest = np.delete(rest, smallest, axis=1)
    return np.column_stack([rest, pool])


def ks_test(reference: ArrayLike, current: ArrayLike) -> TestResult:
    """Two-sample KS test on binned counts: ties make the asymptotic p-value conservative."""
    ref, cur = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    statistic = ks_statistic(ref, cur)
    return TestResult(KS_TWO_SAMPLE, statistic, ks_pvalue(statistic, ref.sum(), cur.sum()))


def mean_drop_test(points: ArrayLike, reference: ArrayLike, current: ArrayLike) -> TestResult:
    """One-sided Welch z-test that the current mean is below the reference mean."""
    from scipy.stats import norm

    ref_mean, ref_var, ref_n = _mean_variance(points, reference)
    cur_mean, cur_var, cur_n = _mean_variance(points, current)
    error = float(np.sqrt(ref_var / ref_n + cur_var / cur_n))
    drop = ref_mean - cur_mean
    if error == 0:
        return TestResult(MEAN_DROP_Z, 0.0, 0.0 if drop > 0 else 1.0)
    z = drop / error
    return TestResult(MEAN_DROP_Z, z, float(norm.sf(z)))


def _mean_variance(points: ArrayLike, counts: ArrayLike) -> tuple[float, float, float]:
    """Weighted mean, unbiased variance and size of `points` weighted by `counts`."""
    n = float(np.sum(counts))
    mean, std = weighted_mean_std(points, counts)
    return mean, std**2 * n / max(n - 1, 1), max(n, 1)


def share_rise_test(
    reference_hits: float, reference_n: float, current_hits: float, current_n: float
) -> TestResult:
    """One-sided pooled two-proportion z-test that the current share is above the reference's."""
    from scipy.stats import norm

    pooled = (reference_hits + current_hits) / (reference_n + current_n)
    error = float(np.sqrt(pooled * (1 - pooled) * (1 / reference_n + 1 / current_n)))
    rise = current_hits / current_n - reference_hits / reference_n
    if error == 0:
        return TestResult(SHARE_RISE_Z, 0.0, 0.0 if rise > 0 else 1.0)
    z = rise / error
    return TestResult(SHARE_RISE_Z, z, float(norm.sf(z)))
