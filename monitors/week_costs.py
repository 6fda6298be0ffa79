"""The ISO week's cost so far per tenant, for the budget gauges."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.config import PricingConfig
from core.timeutil import midnight, to_utc, week_start
from monitors import cost
from monitors.aggregate_source import CostAggregates


def tenant_week_costs(
    source: CostAggregates, now: datetime, pricing: PricingConfig
) -> dict[str, float]:
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
        days = source.daily_compute_totals(start, today)
        frames.append(cost.compute_costs(days, pricing, 86_400, by=["day"]))
    if now > today:
        partial = source.compute_totals(today, now)
        frames.append(cost.compute_costs(partial, pricing, (now - today).total_seconds()))
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return {}
    costs = pd.concat(frames)
    return {str(t): float(v) for t, v in costs.groupby("tenant")["total_cost_usd"].sum().items()}
