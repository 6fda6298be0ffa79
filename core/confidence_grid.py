"""The fine confidence grid: the bins baselines, references and rollups count on (pure)."""

from __future__ import annotations

FINE_BINS = 200
# k / FINE_BINS is the double nearest the decimal edge, the value histograms round edges to, so
# an edge from a JSON baseline and one from this grid compare equal.
FINE_EDGES: tuple[float, ...] = tuple(k / FINE_BINS for k in range(FINE_BINS + 1))
