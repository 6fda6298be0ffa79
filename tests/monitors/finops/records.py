"""Prediction records for the FinOps report tests: a tiny hand-priced set and a seeded month."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.config import AppConfig


def record(
    request_id: str,
    ts: datetime,
    tenant: str,
    endpoint: str,
    model: str,
    version: str,
    resource: str,
    compute_ms: float,
    status: str = "ok",
) -> dict[str, Any]:
    """One prediction record; only the columns the cost figures read vary."""
    ok = status == "ok"
    return {
        "request_id": request_id,
        "ts": ts,
        "tenant": tenant,
        "endpoint": endpoint,
        "model_name": model,
        "model_version": version,
        "predicted_class": "billing" if ok else None,
        "confidence": 0.9 if ok else None,
        "latency_ms": 12.0,
        "compute_ms": compute_ms,
        "batch_size": 1,
        "status": status,
        "resource_class": resource,
    }


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


# Prices chosen so that every figure is easy to work out by hand: a day of capacity costs
# 1 replica x $0.05/h x 24 h = $1.20.
HAND_CONFIG = AppConfig.model_validate(
    {
        "pricing": {
            "default": {"cpu_per_second": 0.01, "gpu_per_second": 0.1, "per_request": 0.001},
            "models": {
                "risk_scorer": {"cpu_per_second": 0.02, "gpu_per_second": 0.2, "per_request": 0.002}
            },
            "capacity": {"replicas": 1, "hourly_rate_usd": 0.05},
        },
        "tenants": {
            "acme": {"weekly_budget_usd": 1.0},
            "globex": {"weekly_budget_usd": 2.0},
            "initech": {"weekly_budget_usd": 0.5},
            "hooli": {"weekly_budget_usd": 5.0},
            "umbrella": {},
        },
    }
)

TC, RS = "ticket_classifier", "risk_scorer"
HAND_RECORDS = [
    # 2026-W46: the store's first predictions (Tue 10 Nov).
    record("p1", at(10, 10), "acme", "classify_ticket", TC, "v1", "cpu", 20_000),
    record("p2", at(10, 11), "globex", "classify_tickets", TC, "v1", "cpu", 10_000),
    # 2026-W47 (Mon 16 to Sun 22 Nov).
    record("c1", at(16, 0, 0, 0), "acme", "classify_ticket", TC, "v1", "cpu", 30_000),
    record("c2", at(16, 9), "acme", "classify_ticket", TC, "v2", "gpu", 2_000),
    record("c3", at(17, 9), "globex", "classify_tickets", TC, "v2", "cpu", 5_000),
    record("c4", at(17, 10), "globex", "classify_tickets", TC, "v2", "cpu", 5_000, "model_error"),
    record("c5", at(18, 9), "initech", "predict_risk", RS, "r1", "cpu", 100_000),
    record("c6", at(22, 23, 59, 59), "initech", "predict_risk", RS, "r1", "cpu", 0),
    # Monday 00:00 of 2026-W48: after the week, in no figure.
    record(
        "n1", datetime(2026, 11, 23, tzinfo=UTC), "acme", "classify_ticket", TC, "v1", "cpu", 50_000
    ),
]


DEMO_CONFIG = AppConfig.model_validate(
    {
        "pricing": {
            "default": {"cpu_per_second": 0.001, "gpu_per_second": 0.004, "per_request": 0.0002},
            "models": {"risk_scorer": {"cpu_per_second": 0.002, "per_request": 0.0004}},
            "capacity": {"replicas": 2, "hourly_rate_usd": 0.1},
        },
        "tenants": {
            "acme": {"weekly_budget_usd": 12.0},
            "globex": {"weekly_budget_usd": 9.0},
            "initech": {"weekly_budget_usd": 8.0},
        },
    }
)
DEMO_ROUTES = (
    ("acme", "classify_ticket", TC, 0.40),
    ("acme", "predict_risk", RS, 0.15),
    ("globex", "classify_tickets", TC, 0.30),
    ("initech", "classify_ticket", TC, 0.10),
    ("initech", "predict_risk", RS, 0.05),
)


def demo_records(first: date, last: date, spike: date, per_day: int = 220, seed: int = 47):
    """Seeded traffic from `first` to `last`; globex's bulk endpoint quadruples on `spike`.

    Ticket classifier v2 rolls out on GPUs halfway through, so versions move week over week.
    """
    rng = random.Random(seed)
    weights = [w for *_, w in DEMO_ROUTES]
    records = []
    day, i = first, 0
    rollout = first + (last - first) / 2
    while day <= last:
        weekend = day.weekday() >= 5
        count = int(per_day * (0.45 if weekend else 1.0) * rng.uniform(0.9, 1.1))
        for _ in range(count):
            tenant, endpoint, model, _ = rng.choices(DEMO_ROUTES, weights)[0]
            records.append(_demo(i, day, tenant, endpoint, model, rollout, rng))
            i += 1
        if day == spike:
            for _ in range(count):
                records.append(_demo(i, day, "globex", "classify_tickets", TC, rollout, rng))
                i += 1
        day += timedelta(days=1)
    return records


def _demo(i, day, tenant, endpoint, model, rollout, rng):
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=rng.uniform(0, 86_399)
    )
    if model == TC:
        version = "v2" if day >= rollout and rng.random() < 0.7 else "v1"
        resource = "gpu" if version == "v2" else "cpu"
    else:
        version, resource = "r3", "cpu"
    compute = rng.uniform(1_000, 9_000) if resource == "cpu" else rng.uniform(300, 1_500)
    status = "ok" if rng.random() > 0.02 else "model_error"
    return record(f"d{i}", moment, tenant, endpoint, model, version, resource, compute, status)


# The report's section headings, in order.
SECTIONS = (
    "Summary",
    "Total spend and its trend by day",
    "Spend by tenant",
    "Spend by model and version",
    "Spend by endpoint",
    "Cost per 1,000 predictions",
    "Week-over-week change and top movers",
    "Idle and shared cost",
    "Budget against actual",
    "Days that stand out",
    "How these figures are computed",
)
