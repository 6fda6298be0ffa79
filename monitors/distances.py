"""Distances between two distributions given as counts over the same bins (pure numpy)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Share given to an empty bin so that PSI stays finite (Evidently fills empty bins the same way).
PSI_EPSILON = 1e-4

Floats = NDArray[np.float64]


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
