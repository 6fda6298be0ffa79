"""Seeded confidence samples and their histograms for the monitor tests."""

from __future__ import annotations

import numpy as np

from monitors.histograms import FINE_EDGES, ConfidenceHistogram, normalize_edges


def confidences(n: int, a: float, b: float, seed: int) -> np.ndarray:
    """Beta-distributed confidences clipped into (0, 1]."""
    return np.clip(np.random.default_rng(seed).beta(a, b, n), 1e-6, 1.0)


def histogram(values: np.ndarray, edges: np.ndarray) -> ConfidenceHistogram:
    """Exact counts over `edges` ([e_i, e_i+1), last bin closed, as the SQL aggregate bins)."""
    counts, _ = np.histogram(values, bins=edges)
    return ConfidenceHistogram.from_counts(edges, counts)


def deciles(values: np.ndarray) -> np.ndarray:
    """0, the nine deciles, 1: what a model's baseline stores."""
    return normalize_edges(np.quantile(values, np.linspace(0, 1, 11))[1:-1])


def grid_for(*quantile_sets: np.ndarray, cutoff: float = 0.5) -> np.ndarray:
    """The grid the runner asks SQL for: fine edges, quantile edges and the cutoff."""
    return normalize_edges(FINE_EDGES, *quantile_sets, [cutoff])


def bin_midpoints(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value replaced by the midpoint of its bin."""
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    return (edges[index] + edges[index + 1]) / 2
