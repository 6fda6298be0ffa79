"""The evaluation report of a model on its validation set, reference distributions included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

HISTOGRAM_BINS = 200
HISTOGRAM_EDGES: tuple[float, ...] = tuple(round(i / HISTOGRAM_BINS, 3) for i in range(201))
DECILES: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(1, 10))
ECE_BINS = 15


def evaluate(
    labels: Sequence[str],
    probabilities: np.ndarray,
    classes: Sequence[str],
    reference_probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1 and calibration of `probabilities`, and the reference distributions
    of `reference_probabilities` (held-out rows beyond the validation set; default: these)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth = np.array([list(classes).index(label) for label in labels])
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    per_class = _per_class(truth, predicted, classes)
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "macro_f1": float(np.mean([entry["f1"] for entry in per_class.values()])),
        "calibration": {
            "ece": expected_calibration_error(confidence, predicted == truth),
            "brier": brier_score(probabilities, truth),
            "ece_bins": ECE_BINS,
        },
        "n_validation": len(truth),
        "per_class": per_class,
        "reference": reference_distributions(
            probabilities if reference_probabilities is None else reference_probabilities, classes
        ),
    }


def reference_distributions(probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Confidence histogram, deciles and predicted-class shares: the drift baseline."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    predicted = probabilities.argmax(axis=1)
    n = len(confidence)
    counts = {name: int(np.sum(predicted == i)) for i, name in enumerate(classes)}
    histogram, _ = np.histogram(confidence, bins=np.asarray(HISTOGRAM_EDGES))
    deciles = np.quantile(confidence, DECILES)
    return {
        "n": n,
        "confidence_histogram": {
            "edges": list(HISTOGRAM_EDGES),
            "counts": [int(c) for c in histogram],
        },
        "confidence_quantile_edges": [0.0, *(float(q) for q in deciles), 1.0],
        "class_counts": counts,
        "class_shares": {name: count / n for name, count in counts.items()},
        "mean_confidence": float(confidence.mean()),
    }


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Top-label ECE: |accuracy - mean confidence| per equal-width bin, weighted by its size."""
    index = np.minimum((np.asarray(confidence) * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            gap = abs(float(np.mean(correct[members])) - float(np.mean(confidence[members])))
            total += gap * members.sum() / len(confidence)
    return total


def brier_score(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot truth (0 best, 2 worst)."""
    onehot = np.zeros_like(probabilities)
    onehot[np.arange(len(truth)), truth] = 1.0
    return float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1)))


def _per_class(
    truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    result = {}
    for i, name in enumerate(classes):
        hits = float(np.sum((predicted == i) & (truth == i)))
        predicted_n = float(np.sum(predicted == i))
        support = float(np.sum(truth == i))
        precision = hits / predicted_n if predicted_n else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support)}
    return result
