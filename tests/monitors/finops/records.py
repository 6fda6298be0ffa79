"""Prediction records for the FinOps report tests: a tiny hand-priced set and a seeded month."""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from core.config import AppConfig
from core.contracts import endpoint
from service.models.risk_data import risk_features
from service.models.ticket_corpus import ticket_text
from service.traffic import DEMO_TENANTS, plan_traffic
from storage.aggregates import COMPUTE_SUMS


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
    busy_ms: float | None = None,
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
        "busy_ms": busy_ms,
    }


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


# Prices chosen so that every figure is easy to work out by hand: a day of capacity costs
# 1 replica x $0.05/h x 24 h = $1.20 for 86,400 CPU seconds, so 7,200 busy seconds cost $0.10.
# The per-second prices of the models apply only when paid per use (replicas 0).
HAND_CONFIG = AppConfig.model_validate(
    {
        "pricing": {
            "default": {"cpu_per_second": 0.01, "gpu_per_second": 0.1, "per_request": 0.001},
            "models": {
                "risk_scorer": {"cpu_per_second": 0.02, "gpu_per_second": 0.2, "per_request": 0.002}
            },
            "capacity": {"replicas": 1, "hourly_rate_usd": 0.05, "cpus": 1},
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
HOUR_MS = 3_600_000.0  # busy time in hand-sized units: an hour of CPU costs $0.05
HAND_RECORDS = [
    # 2026-W46: the store's first predictions (Tue 10 Nov).
    record("p1", at(10, 10), "acme", "classify_ticket", TC, "v1", "cpu", 20, busy_ms=4 * HOUR_MS),
    record(
        "p2", at(10, 11), "globex", "classify_tickets", TC, "v1", "cpu", 10, busy_ms=2 * HOUR_MS
    ),
    # 2026-W47 (Mon 16 to Sun 22 Nov).
    record(
        "c1", at(16, 0, 0, 0), "acme", "classify_ticket", TC, "v1", "cpu", 30, busy_ms=6 * HOUR_MS
    ),
    record("c2", at(16, 9), "acme", "classify_ticket", TC, "v2", "gpu", 2, busy_ms=4 * HOUR_MS),
    record("c3", at(17, 9), "globex", "classify_tickets", TC, "v2", "cpu", 5, busy_ms=HOUR_MS),
    record(
        "c4", at(17, 10), "globex", "classify_tickets", TC, "v2", "cpu", 5, "model_error", HOUR_MS
    ),
    record("c5", at(18, 9), "initech", "predict_risk", RS, "r1", "cpu", 100, busy_ms=20 * HOUR_MS),
    record("c6", at(22, 23, 59, 59), "initech", "predict_risk", RS, "r1", "cpu", 0, busy_ms=0.0),
    # Monday 00:00 of 2026-W48: after the week, in no figure.
    record(
        "n1", datetime(2026, 11, 23, tzinfo=UTC), "acme", "classify_ticket", TC, "v1", "cpu", 50
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
    # The worker's whole busy time: the HTTP path, not the model, dominates it.
    busy = 20_000 + compute
    return record(
        f"d{i}", moment, tenant, endpoint, model, version, resource, compute, status, busy
    )


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


# The demo stack's traffic: `servewatch stack up` sends DEMO_RATE requests a second from
# service.traffic's demo tenants. The worker's busy time per request was measured with
# bench/bench_busy.py (each endpoint alone and the demo mix, open loop; docs/finops.md): about
# 2.9 ms for a single ticket, 2.8 ms for a risk score, and 2.9 ms + 0.1 ms an item for a bulk
# request.
DEMO_RATE = 5.0
DEMO_BUSY_MS = {"classify_ticket": 2.9, "predict_risk": 2.8}
DEMO_BULK_MS = (2.9, 0.1)


@functools.cache
def demo_hour() -> dict[tuple[str, str], tuple[int, int]]:
    """An hour of demo traffic planned by the generator: (requests, items) per tenant and
    endpoint."""
    hour: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    plan = plan_traffic(
        DEMO_TENANTS, DEMO_RATE, 3600, ticket_text=ticket_text, risk_features=risk_features
    )
    for request in plan:
        requests, items = hour[(request.tenant, request.endpoint)]
        hour[(request.tenant, request.endpoint)] = (
            requests + 1,
            items + len(request.body.get("tickets", [None])),
        )
    return dict(hour)


def demo_week_totals(
    days: Sequence[date], *, bulk_scale: float = 1.0, risk_scale: float = 1.0
) -> pd.DataFrame:
    """Daily totals (as storage.aggregates.daily_compute_totals gives them) of the demo traffic.

    The planned hour (`demo_hour`) is repeated for every hour of `days`; `bulk_scale` and
    `risk_scale` weigh the busy time of those requests, to try other splits.
    """
    rows = []
    for (tenant, name), (requests, items) in sorted(demo_hour().items()):
        if endpoint(name).bulk:
            busy = (DEMO_BULK_MS[0] * requests + DEMO_BULK_MS[1] * items) * bulk_scale
        else:
            busy = DEMO_BUSY_MS[name] * requests * (risk_scale if name == "predict_risk" else 1)
        model = endpoint(name).model
        for day in days:
            rows.append(
                (
                    day,
                    model,
                    "v1",
                    tenant,
                    name,
                    "cpu",
                    24 * items,
                    24 * requests,
                    2.4 * busy,
                    24 * busy,
                )
            )
    columns = ["day", "model_name", "model_version", "tenant", "endpoint", "resource_class"]
    return pd.DataFrame(rows, columns=[*columns, *COMPUTE_SUMS]).astype(
        {"n": "int64", "requests": "int64"}
    )
