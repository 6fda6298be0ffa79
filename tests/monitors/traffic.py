"""Seeded prediction traffic with known drift, and a registered baseline, for runner tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert

from monitors.histograms import FINE_EDGES
from storage.schema import model_versions
from storage.writer import write_predictions

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
WINDOW = (T0, T0 + timedelta(hours=1))
PREVIOUS = (T0 - timedelta(hours=1), T0)
MODEL = "ticket_classifier"
CLASSES = ["account", "billing", "other", "shipping", "technical"]
BASE_SHARES = [0.2, 0.3, 0.1, 0.15, 0.25]
DRIFTED_SHARES = [0.1, 0.6, 0.05, 0.1, 0.15]


def sample(n: int, a: float, b: float, shares: list[float], seed: int):
    rng = np.random.default_rng(seed)
    confidence = np.round(np.clip(rng.beta(a, b, n), 0.2, 1.0), 6)
    classes = rng.choice(CLASSES, n, p=shares)
    return confidence, classes


def records(
    tenant: str,
    n: int,
    start: datetime,
    drifted: bool = False,
    error_rate: float = 0.0,
    version: str = "v1",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """`n` predictions spread over the hour after `start`."""
    a, b, shares = (3.0, 2.0, DRIFTED_SHARES) if drifted else (8.0, 2.0, BASE_SHARES)
    confidence, classes = sample(n, a, b, shares, seed)
    rng = np.random.default_rng(seed + 1000)
    failed = rng.random(n) < error_rate
    endpoints = rng.choice(["classify_ticket", "classify_tickets"], n)
    rows = []
    for i in range(n):
        rows.append(
            {
                "request_id": f"{tenant}-{version}-{seed}-{i}",
                "ts": start + timedelta(seconds=3599 * i / max(n - 1, 1)),
                "tenant": tenant,
                "endpoint": str(endpoints[i]),
                "model_name": MODEL,
                "model_version": version,
                "predicted_class": None if failed[i] else str(classes[i]),
                "confidence": None if failed[i] else float(confidence[i]),
                "latency_ms": 5.0,
                "compute_ms": 0.5 + (i % 7) * 0.25,
                "batch_size": 4,
                "status": "model_error" if failed[i] else "ok",
                "resource_class": "cpu",
            }
        )
    return rows


def window_traffic() -> list[dict[str, Any]]:
    """acme as in validation, globex drifted, initech too small to judge."""
    return (
        records("acme", 1500, T0, error_rate=0.004, seed=1)
        + records("globex", 1200, T0, drifted=True, error_rate=0.05, seed=2)
        + records("initech", 30, T0, seed=3)
    )


def previous_traffic() -> list[dict[str, Any]]:
    """The hour before: every tenant as in validation."""
    return (
        records("acme", 1000, PREVIOUS[0], seed=11)
        + records("globex", 1000, PREVIOUS[0], seed=12)
        + records("initech", 200, PREVIOUS[0], seed=13)
    )


def baseline_reference(n: int = 4000, seed: int = 99) -> dict[str, Any]:
    """A validation-set reference as the model registry stores it."""
    confidence, classes = sample(n, 8.0, 2.0, BASE_SHARES, seed)
    counts, _ = np.histogram(confidence, FINE_EDGES)
    names, class_n = np.unique(classes, return_counts=True)
    return {
        "n": n,
        "confidence_histogram": {
            "edges": [round(float(e), 3) for e in FINE_EDGES],
            "counts": counts.tolist(),
        },
        "confidence_quantile_edges": [0.0, *np.quantile(confidence, np.arange(1, 10) / 10), 1.0],
        "class_counts": {str(k): int(v) for k, v in zip(names, class_n, strict=True)},
        "class_shares": {str(k): float(v / n) for k, v in zip(names, class_n, strict=True)},
        "mean_confidence": float(confidence.mean()),
    }


def register_baseline(engine: Engine, version: str = "v1", reference=None) -> None:
    """Mirror a registered version into `model_versions`, as the model registry does."""
    metadata = {"classes": CLASSES, "evaluation": {"reference": reference or baseline_reference()}}
    with engine.begin() as connection:
        connection.execute(
            insert(model_versions).values(
                model_name=MODEL,
                model_version=version,
                created_at=T0 - timedelta(days=1),
                snapshot_id="0" * 64,
                preprocessing_version="1",
                labels={},
                metadata=metadata,
            )
        )


def load(engine: Engine, *batches: list[dict[str, Any]]) -> None:
    for batch in batches:
        write_predictions(engine, batch)
