"""Seeded prediction records for storage and monitor tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
CLASSES = ("billing", "technical", "account", "shipping", "other")


def make_records(
    n: int, seed: int = 7, start: datetime = T0, step_s: float = 1.0
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        ok = rng.random() > 0.05
        records.append(
            {
                "request_id": f"req-{seed}-{i}",
                "ts": start + timedelta(seconds=i * step_s),
                "tenant": rng.choice(("acme", "globex", "initech")),
                "endpoint": rng.choice(("classify_ticket", "classify_tickets")),
                "model_name": "ticket_classifier",
                "model_version": rng.choice(("v1", "v2")),
                "predicted_class": rng.choice(CLASSES) if ok else None,
                "confidence": round(rng.uniform(0.2, 1.0), 6) if ok else None,
                "latency_ms": rng.uniform(1, 50),
                "compute_ms": rng.uniform(0.01, 2),
                "batch_size": rng.choice((1, 4, 16)),
                "status": "ok" if ok else "model_error",
                "probabilities": {"billing": 0.5, "other": 0.5} if ok else None,
                "features": {"text": "tab\there\nnewline \\ backslash"} if i % 7 == 0 else None,
            }
        )
    return records
