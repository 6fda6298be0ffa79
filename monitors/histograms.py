"""Confidence histograms: the fine grid, quantile edges and re-binning onto other edges (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.confidence_grid import FINE_BINS as FINE_BINS
from core.confidence_grid import FINE_EDGES as FINE_GRID

FINE_EDGES: NDArray[np.float64] = np.asarray(FINE_GRID, dtype=np.float64)
QUANTILE_BINS = 10
# Edges are compared after rounding, so 0.1 from linspace and 0.1 from a JSON baseline are one edge.
EDGE_DECIMALS = 12


def rounded(values: ArrayLike) -> NDArray[np.float64]:
    """Values as float64 rounded to EDGE_DECIMALS."""
    return np.asarray(np.round(np.asarray(values, dtype=np.float64), EDGE_DECIMALS), np.float64)


def normalize_edges(*edge_sets: Iterable[float]) -> NDArray[np.float64]:
    """Sorted union of edge sets within [0, 1], always including 0 and 1."""
    values = [0.0, 1.0]
    for edges in edge_sets:
        values.extend(float(e) for e in edges)
    return np.unique(rounded(np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)))


@dataclass(frozen=True)
class ConfidenceHistogram:
    """Counts over bins [edges[i], edges[i+1]) (last bin closed).

    `anchors` pins the share of the mass below some points between edges (a baseline's deciles
    hold k/10 of it); other points between edges are linearly interpolated.
    """

    edges: NDArray[np.float64]
    counts: NDArray[np.float64]
    anchors: Mapping[float, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError(f"{len(self.edges)} edges do not bound {len(self.counts)} bins")
        if np.any(np.diff(self.edges) <= 0):
            raise ValueError("histogram edges must be strictly increasing")
        if np.any(self.counts < 0):
            raise ValueError("histogram counts must not be negative")

    @classmethod
    def from_counts(
        cls, edges: ArrayLike, counts: ArrayLike, anchors: Mapping[float, float] | None = None
    ) -> ConfidenceHistogram:
        edge_array = rounded(edges)
        return cls(edge_array, np.asarray(counts, dtype=np.float64), dict(anchors or {}))

    @property
    def n(self) -> float:
        return float(self.counts.sum())

    @property
    def midpoints(self) -> NDArray[np.float64]:
        return (self.edges[:-1] + self.edges[1:]) / 2

    def cumulative_at(self, points: ArrayLike) -> NDArray[np.float64]:
        """Count of values below each point (the last edge counts everything)."""
        x = rounded(points)
        cumulative = np.concatenate([[0.0], np.cumsum(self.counts)])
        result = np.interp(x, self.edges, cumulative)
        for point, anchored in self.anchors.items():
            self._apply_anchor(x, result, cumulative, round(point, EDGE_DECIMALS), anchored)
        return np.asarray(result, dtype=np.float64)

    def _apply_anchor(
        self,
        x: NDArray[np.float64],
        result: NDArray[np.float64],
        cumulative: NDArray[np.float64],
        point: float,
        anchored: float,
    ) -> None:
        hits = x == point
        if not hits.any() or point <= self.edges[0] or point >= self.edges[-1]:
            return
        right = int(np.searchsorted(self.edges, point, side="right"))
        if self.edges[right - 1] == point:
            return  # the point is an edge: its count is known exactly
        low, high = cumulative[right - 1], cumulative[right]
        result[hits] = min(max(anchored * self.n, low), high)

    def on(self, edges: ArrayLike) -> ConfidenceHistogram:
        """The same distribution over other edges (exact where they are a subset of ours)."""
        target = rounded(edges)
        cumulative = self.cumulative_at(target)
        cumulative[0], cumulative[-1] = 0.0, self.n  # values outside the edges are clamped in
        counts = np.maximum(np.diff(cumulative), 0.0)
        return ConfidenceHistogram(target, counts)

    def quantiles(self, bins: int = QUANTILE_BINS) -> NDArray[np.float64]:
        """Edges splitting the mass into `bins` equal parts (linear inside a bin), plus 0 and 1."""
        if self.n <= 0:
            return normalize_edges()
        cumulative = np.concatenate([[0.0], np.cumsum(self.counts)])
        targets = self.n * np.arange(1, bins) / bins
        inner = [_inverse_cdf(self.edges, cumulative, t) for t in targets]
        return normalize_edges(inner)


def _inverse_cdf(
    edges: NDArray[np.float64], cumulative: NDArray[np.float64], target: float
) -> float:
    """Smallest x whose linearly interpolated cumulative count reaches `target`."""
    right = int(np.searchsorted(cumulative, target, side="left"))
    right = min(max(right, 1), len(edges) - 1)
    low, high = cumulative[right - 1], cumulative[right]
    if high <= low:
        return float(edges[right])
    fraction = (target - low) / (high - low)
    return float(edges[right - 1] + fraction * (edges[right] - edges[right - 1]))


def on_fine_grid(edges: Iterable[float]) -> NDArray[np.float64]:
    """Edges moved to the nearest fine-grid edge (merged where they meet), with 0 and 1.

    Bins on these edges are counted exactly by the per-minute rollups' fine bins as by raw rows,
    and on both sides of a comparison (no share interpolated inside a fine bin).
    """
    values = np.clip(np.asarray(list(edges), dtype=np.float64), 0.0, 1.0)
    return normalize_edges(np.round(values * FINE_BINS) / FINE_BINS)


def baseline_anchors(quantile_edges: Iterable[float]) -> dict[float, float]:
    """Cumulative shares at a baseline's quantile edges: edge k of q holds k/q of the mass."""
    edges = list(quantile_edges)
    bins = len(edges) - 1
    anchors: dict[float, float] = {}
    for k, edge in enumerate(edges):
        # With ties the same edge repeats; the mass strictly below it is the smallest share.
        anchors.setdefault(round(float(edge), EDGE_DECIMALS), k / bins if bins else 0.0)
    return anchors
