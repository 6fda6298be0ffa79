"""Confidence drift between a reference and a current confidence histogram (pure)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.contracts import metric_names
from monitors.distances import (
    PSI_EPSILON,
    homogeneity,
    js_distance,
    ks_test,
    mean_drop_test,
    psi,
    share_rise_test,
    shares,
    wasserstein,
    weighted_mean_std,
)
from monitors.histograms import ConfidenceHistogram, normalize_edges, on_fine_grid
from monitors.results import Measurement

MONITOR = "confidence_drift"
METRICS = metric_names(MONITOR)
# Evidently's floor for the reference spread, so a constant reference does not divide by zero.
MIN_REFERENCE_STD = 0.001


def confidence_drift(
    reference: ConfidenceHistogram,
    current: ConfidenceHistogram,
    quantile_edges: Iterable[float],
    low_confidence_cutoff: float,
    epsilon: float = PSI_EPSILON,
) -> dict[str, Measurement]:
    """PSI and JS on the reference-quantile bins; KS, Wasserstein and means on the fine grid.

    The quantile edges are snapped to the fine grid first (`on_fine_grid`): the decile bins are
    then counted exactly from the rollups' fine bins, and from the reference's fine histogram.

    Each measurement's details carry the two-sample test that tells it from sampling noise:
    chi-square homogeneity of the decile bins (PSI, JS), KS on the grid (KS and Wasserstein,
    both distances between the two CDFs), Welch's z for the mean, a two-proportion z for the
    low-confidence share.
    """
    if reference.n <= 0 or current.n <= 0:
        raise ValueError("confidence drift needs predictions in both the reference and the window")
    bins = on_fine_grid(quantile_edges)
    grid = normalize_edges(current.edges, bins, [low_confidence_cutoff])
    ref, cur = reference.on(grid), current.on(grid)
    ref_bins, cur_bins = ref.on(bins).counts, cur.on(bins).counts

    points = ref.midpoints
    ref_mean, ref_std = weighted_mean_std(points, ref.counts)
    cur_mean, cur_std = weighted_mean_std(points, cur.counts)
    distance = wasserstein(points, ref.counts, cur.counts)
    ks = ks_test(ref.counts, cur.counts).details()
    binned = homogeneity(ref_bins, cur_bins).details()
    ref_low = float(ref.cumulative_at([low_confidence_cutoff])[0])
    cur_low = float(cur.cumulative_at([low_confidence_cutoff])[0])
    table = _bin_table(bins, ref_bins, cur_bins)
    sizes = {"reference_n": round(ref.n, 6), "current_n": round(cur.n, 6)}
    return {
        "psi": Measurement(psi(ref_bins, cur_bins, epsilon), {**sizes, **binned, "bins": table}),
        "js_distance": Measurement(js_distance(ref_bins, cur_bins), {**sizes, **binned}),
        "ks_statistic": Measurement(float(ks["test_statistic"]), {**sizes, **ks}),
        "wasserstein_normalized": Measurement(
            distance / max(ref_std, MIN_REFERENCE_STD),
            {
                **sizes,
                **ks,
                "wasserstein": distance,
                "reference_std": ref_std,
                "current_std": cur_std,
            },
        ),
        "mean_confidence_drop": Measurement(
            ref_mean - cur_mean,
            {
                **sizes,
                **mean_drop_test(points, ref.counts, cur.counts).details(),
                "reference_mean": ref_mean,
                "current_mean": cur_mean,
            },
        ),
        "low_confidence_share": Measurement(
            cur_low / cur.n,
            {
                **sizes,
                **share_rise_test(ref_low, ref.n, cur_low, cur.n).details(),
                "cutoff": low_confidence_cutoff,
                "reference_share": ref_low / ref.n,
            },
        ),
    }


def _bin_table(
    edges: np.ndarray, reference: np.ndarray, current: np.ndarray
) -> list[dict[str, float]]:
    ref_shares, cur_shares = shares(reference), shares(current)
    return [
        {
            "low": float(edges[i]),
            "high": float(edges[i + 1]),
            "reference_share": round(float(ref_shares[i]), 6),
            "current_share": round(float(cur_shares[i]), 6),
        }
        for i in range(len(edges) - 1)
    ]
