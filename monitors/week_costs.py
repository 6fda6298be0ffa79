"""The ISO week's cost so far per tenant, for the budget gauges."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.config import PricingConfig
from core.timeutil import midnight, to_utc, week_start
from monitors import cost
from storage import aggregates
from storage.engine import Engine


def tenant_week_costs(engine: Engine, now: datetime, pricing: PricingConfig) -> dict[str, float]:
    """Cost of the ISO week so far per tenant (attributed plus idle share).

    Each UTC day is its own capacity period, as in the weekly FinOps report, so the budget gauge
    and the report agree; today counts only the seconds that have passed.
    """
    start = week_start(now)
    if now <= start:
        return {}
    today = midnight(to_utc(now).date())
    frames = []
    if today > start:
        days = aggregates.daily_compute_totals(engine, start, today)
        frames.append(cost.compute_costs(days, pricing, 86_400, by=["day"]))
    if now > today:
        partial = aggregates.compute_totals(engine, today, now)
        frames.append(cost.compute_costs(partial, pricing, (now - today).total_seconds()))
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return {}
    costs = pd.concat(frames)
    return {str(t): float(v) for t, v in costs.groupby("tenant")["total_cost_usd"].sum().items()}
