"""Seeded windows of one key's predictions, without drift or with a known one, judged by the
monitors' pure functions against both reference sources (shared by the tests and the bench).

The population looks like the ticket classifier's validation predictions: five classes, the
confidence piled up near 1 (85 % `1 - Beta(0.5, 15)`, 15 % `Beta(5, 2.5)`, floored at 1/5; deciles
0.74 .. 0.999, a quarter of it in the top fine bin). A registered baseline is built as the
model build builds it (fine-grid counts and deciles of `baseline_rows` predictions); a
reference window is `window_hours` windows of the same traffic, counted exactly on the grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy.optimize import brentq

from core.config import MonitorsConfig
from core.contracts import Status
from monitors.baselines import Baseline
from monitors.class_shift import MONITOR as CLASS_SHIFT
from monitors.class_shift import class_shift
from monitors.distances import psi
from monitors.drift import MONITOR as CONFIDENCE_DRIFT
from monitors.drift import confidence_drift
from monitors.histograms import FINE_EDGES, ConfidenceHistogram, normalize_edges
from monitors.thresholds import classify, judge, worst_status

CLASSES = ("account", "billing", "other", "shipping", "technical")
SHARES = np.array([0.17, 0.25, 0.13, 0.21, 0.24])
# The direction a class shift moves the shares in (log-linear tilt): billing up, others down.
SHIFT_DIRECTION = np.array([-0.5, 1.0, -1.0, 0.0, -0.5])
POOL_SIZE = 400_000
CONFIDENCE_FLOOR = 1 / len(CLASSES)
SOURCES = ("baseline", "window")


def _pool(seed: int = 20_261_116) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sure = rng.random(POOL_SIZE) < 0.85
    values = np.where(sure, 1 - rng.beta(0.5, 15, POOL_SIZE), rng.beta(5, 2.5, POOL_SIZE))
    return np.round(np.maximum(values, CONFIDENCE_FLOOR), 6)


@dataclass(frozen=True)
class Population:
    """What one key's traffic is drawn from: a pool of confidences (weighted) and class shares."""

    pool: np.ndarray
    weights: np.ndarray
    shares: np.ndarray

    @classmethod
    def stationary(cls) -> Population:
        pool = _pool()
        return cls(pool, np.full(len(pool), 1 / len(pool)), SHARES)

    @cached_property
    def _cumulative(self) -> np.ndarray:
        return np.cumsum(self.weights)

    @property
    def mean_confidence(self) -> float:
        return float(np.sum(self.pool * self.weights))

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, float]]:
        """`n` predictions: their confidences and their class counts."""
        values = self.pool[np.searchsorted(self._cumulative, rng.random(n) * self._cumulative[-1])]
        counts = rng.multinomial(n, self.shares)
        return values, {c: float(k) for c, k in zip(CLASSES, counts, strict=True)}

    def with_mean_drop(self, drop: float) -> Population:
        """The confidences tilted (weights ~ exp(-t x)) so that their mean drops by `drop`."""
        target = self.mean_confidence - drop

        def mean_at(t: float) -> float:
            return float(np.sum(self.pool * _tilt(self.pool, t))) - target

        t = brentq(mean_at, 0.0, 500.0)
        return replace(self, weights=_tilt(self.pool, t))

    def with_class_psi(self, target: float) -> Population:
        """Class shares tilted along SHIFT_DIRECTION to a population PSI of `target`."""
        t = brentq(lambda s: psi(SHARES, _shifted(s)) - target, 0.0, 10.0)
        return replace(self, shares=_shifted(t))


def _tilt(pool: np.ndarray, t: float) -> np.ndarray:
    weights = np.exp(-t * (pool - pool.min()))
    return weights / weights.sum()


def _shifted(t: float) -> np.ndarray:
    shares = SHARES * np.exp(t * SHIFT_DIRECTION)
    return shares / shares.sum()


@dataclass(frozen=True)
class Reference:
    """A reference as the runner sees it: a confidence histogram, its deciles, class counts;
    and the raw confidences it was made of (what a raw-row tool such as Evidently is given)."""

    source: str
    confidence: ConfidenceHistogram
    quantile_edges: np.ndarray
    class_counts: Mapping[str, float]
    values: np.ndarray

    @cached_property
    def grid(self) -> np.ndarray:
        return normalize_edges(FINE_EDGES, self.quantile_edges, [CUTOFF])


CUTOFF = MonitorsConfig().low_confidence_cutoff


def baseline(population: Population, rng: np.random.Generator, rows: int) -> Reference:
    """A registered baseline of `rows` validation predictions, parsed as the monitors parse it."""
    values, counts = population.draw(rng, rows)
    histogram, _ = np.histogram(values, FINE_EDGES)
    reference = {
        "confidence_histogram": {"edges": FINE_EDGES.tolist(), "counts": histogram.tolist()},
        "confidence_quantile_edges": [0.0, *np.quantile(values, np.arange(1, 10) / 10), 1.0],
        "class_counts": counts,
    }
    parsed = Baseline.from_reference("model", "v1", reference, CLASSES)
    return Reference(
        "baseline", parsed.confidence, parsed.quantile_edges, parsed.class_counts, values
    )


def reference_window(population: Population, rng: np.random.Generator, rows: int) -> Reference:
    """A reference window of `rows` predictions; its deciles come from its fine histogram."""
    values, counts = population.draw(rng, rows)
    fine = exact_histogram(values, FINE_EDGES)
    quantiles = fine.quantiles()
    grid = normalize_edges(FINE_EDGES, quantiles, [CUTOFF])
    return Reference("window", exact_histogram(values, grid), quantiles, counts, values)


def exact_histogram(values: np.ndarray, edges: np.ndarray) -> ConfidenceHistogram:
    """Counts over [e_i, e_i+1) with the last bin closed, as the SQL aggregate counts them."""
    counts, _ = np.histogram(values, bins=edges)
    return ConfidenceHistogram.from_counts(edges, counts)


def verdicts(
    reference: Reference,
    values: np.ndarray,
    class_counts: Mapping[str, float],
    config: MonitorsConfig,
    keys: int = 1,
    floors_only: bool = False,
    monitors: tuple[str, ...] = (CONFIDENCE_DRIFT, CLASS_SHIFT),
) -> dict[str, Status]:
    """Each drift monitor's worst status over its metrics for one key's window.

    `floors_only` judges the values against the thresholds alone (the decision before the
    noise tests), for comparison.
    """
    found = {}
    for monitor in monitors:
        measurements = (
            class_shift(reference.class_counts, class_counts, CLASSES)
            if monitor == CLASS_SHIFT
            else confidence_drift(
                reference.confidence,
                exact_histogram(values, reference.grid),
                reference.quantile_edges,
                config.low_confidence_cutoff,
            )
        )
        if floors_only:
            statuses = [
                classify(m.value, config.threshold(monitor, metric))[0]
                for metric, m in measurements.items()
            ]
        else:
            statuses = [
                judge(config, monitor, metric, m, keys=keys).status
                for metric, m in measurements.items()
            ]
        found[monitor] = worst_status(statuses)
    return found


@dataclass(frozen=True)
class Scenario:
    """Windows of `n` predictions against references of one source, drawn with `seed`."""

    source: str
    n: int
    windows: int
    seed: int
    baseline_rows: int = 10_000
    window_hours: int = 24
    # Windows judged per reference draw: a registered baseline serves many windows.
    windows_per_reference: int = 10

    def reference(self, population: Population, rng: np.random.Generator) -> Reference:
        if self.source == "baseline":
            return baseline(population, rng, self.baseline_rows)
        return reference_window(population, rng, self.n * self.window_hours)


def stationary_statuses(
    scenario: Scenario, config: MonitorsConfig, keys: int = 1, floors_only: bool = False
) -> dict[str, list[Status]]:
    """Statuses of each monitor over the scenario's windows of traffic without drift."""
    population = Population.stationary()
    rng = np.random.default_rng(scenario.seed)
    statuses: dict[str, list[Status]] = {CONFIDENCE_DRIFT: [], CLASS_SHIFT: []}
    reference = scenario.reference(population, rng)
    for i in range(scenario.windows):
        if i and i % scenario.windows_per_reference == 0:
            reference = scenario.reference(population, rng)
        window = population.draw(rng, scenario.n)
        for monitor, status in verdicts(reference, *window, config, keys, floors_only).items():
            statuses[monitor].append(status)
    return statuses


def first_window_statuses(
    scenario: Scenario,
    shifted: Population,
    monitor: str,
    config: MonitorsConfig,
    keys: int = 1,
    floors_only: bool = False,
) -> list[Status]:
    """The status of the first full window after a shift, in the scenario's windows draws."""
    population = Population.stationary()
    rng = np.random.default_rng(scenario.seed)
    found = []
    reference = scenario.reference(population, rng)
    for i in range(scenario.windows):
        if i and i % scenario.windows_per_reference == 0:
            reference = scenario.reference(population, rng)
        window = shifted.draw(rng, scenario.n)
        found.append(verdicts(reference, *window, config, keys, floors_only, (monitor,))[monitor])
    return found


def share_at_least(statuses: list[Status], level: Status) -> float:
    """Share of statuses at `level` or above (warn < alert)."""
    wanted = ("warn", "alert") if level == "warn" else ("alert",)
    return sum(s in wanted for s in statuses) / len(statuses)
