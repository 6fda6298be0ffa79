"""Metric updates summed in memory and written to prometheus_client in bulk.

Under BentoML's workers prometheus_client runs in multiprocess mode: every `inc` or `observe`
takes a lock, checks the pid and writes the value into an mmap (about 1.5 µs each), and a
request makes about fifteen of them. A `MetricBuffer` hands out stand-ins for metric children
that only add to plain floats; `flush()` writes each touched series once, so the cost of the
metrics follows the number of series, not the traffic. Not thread-safe: one thread (the worker's
event loop) updates and flushes.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any


class MetricBuffer:
    """Pending updates of metric children; `flush()` writes them out."""

    def __init__(self) -> None:
        self._dirty: list[_Pending] = []

    def counter(self, child: Any) -> PendingCounter:
        """A stand-in for a counter's or gauge's child (`inc`, `dec`)."""
        return PendingCounter(child, self._dirty)

    def histogram(self, child: Any) -> PendingHistogram:
        """A stand-in for a histogram's child (`observe`)."""
        return PendingHistogram(child, self._dirty)

    @property
    def pending(self) -> int:
        """Series with updates not written yet."""
        return len(self._dirty)

    def flush(self) -> None:
        """Write every pending update to its child."""
        dirty, self._dirty[:] = list(self._dirty), []
        for pending in dirty:
            pending.write()


class _Pending:
    __slots__ = ("_child", "_dirty", "_queued")

    def __init__(self, child: Any, dirty: list[_Pending]) -> None:
        self._child = child
        self._dirty = dirty
        self._queued = False

    def write(self) -> None:
        self._queued = False
        self._write()

    def _write(self) -> None:
        raise NotImplementedError


class PendingCounter(_Pending):
    """Sums increments; a gauge's `inc`/`dec` pairs cancel out before anything is written."""

    __slots__ = ("_delta",)

    def __init__(self, child: Any, dirty: list[_Pending]) -> None:
        super().__init__(child, dirty)
        self._delta = 0.0

    # The updates below mark their stand-in dirty inline: they run on every request, where a
    # method call costs more than the two lines it would save.
    def inc(self, amount: float = 1.0) -> None:
        self._delta += amount
        if not self._queued:
            self._queued = True
            self._dirty.append(self)

    def dec(self, amount: float = 1.0) -> None:
        self._delta -= amount
        if not self._queued:
            self._queued = True
            self._dirty.append(self)

    def _write(self) -> None:
        delta, self._delta = self._delta, 0.0
        if delta:
            self._child.inc(delta)


class PendingHistogram(_Pending):
    """Counts observations per bucket as `Histogram.observe` does, and their sum."""

    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, child: Any, dirty: list[_Pending]) -> None:
        super().__init__(child, dirty)
        # prometheus_client keeps one value per bucket (non-cumulative) plus the sum; there is
        # no public call that adds many observations at once, so those values are written here.
        self._bounds: list[float] = list(child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        self._sum += amount
        if not math.isnan(amount):  # NaN lands in no bucket, as in Histogram.observe
            self._counts[bisect_left(self._bounds, amount)] += 1
        if not self._queued:
            self._queued = True
            self._dirty.append(self)

    def _write(self) -> None:
        counts, total = self._counts, self._sum
        self._counts, self._sum = [0] * len(self._bounds), 0.0
        self._child._sum.inc(total)
        for bucket, count in zip(self._child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
