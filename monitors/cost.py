"""Cost attribution: compute time and requests priced per model, plus idle capacity shared out.

Pure functions over aggregate frames, shared by the cost monitor and the weekly FinOps report.
Idle cost follows OpenCost: what the provisioned capacity cost over a period minus what was
attributed to requests, shared across the usage in proportion to attributed cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

from core.config import PricingConfig
from core.contracts import ALL, metric_names
from monitors.results import Measurement

MONITOR = "cost"
METRICS = metric_names(MONITOR)
USAGE_KEYS: tuple[str, ...] = ("model_name", "model_version", "tenant", "endpoint")
COST_COLUMNS: tuple[str, ...] = (
    "n",
    "compute_seconds",
    "attributed_cost_usd",
    "idle_cost_usd",
    "total_cost_usd",
)


def capacity_cost_usd(pricing: PricingConfig, seconds: float) -> float:
    """What the provisioned replicas cost over `seconds`, used or not."""
    capacity = pricing.capacity
    return capacity.replicas * capacity.hourly_rate_usd * seconds / 3600.0


def compute_costs(
    totals: pd.DataFrame,
    pricing: PricingConfig,
    window_seconds: float,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Attributed and idle cost per model, version, tenant and endpoint.

    `totals` has the columns of `storage.aggregates.compute_totals` (model_name, model_version,
    tenant, endpoint, resource_class, n, compute_ms) plus any `by` columns (e.g. `day`); each
    distinct `by` value is a period of `window_seconds` with its own capacity and idle cost.
    """
    keys = [*by, *USAGE_KEYS]
    if totals.empty:
        return pd.DataFrame(columns=[*keys, *COST_COLUMNS])
    priced = totals.assign(
        compute_seconds=totals["compute_ms"].astype(float) / 1000.0,
        attributed_cost_usd=[
            _attributed(pricing, model, resource, float(ms), int(n))
            for model, resource, ms, n in zip(
                totals["model_name"],
                totals["resource_class"],
                totals["compute_ms"],
                totals["n"],
                strict=True,
            )
        ],
    )
    usage = priced.groupby(keys, as_index=False, sort=True)[
        ["n", "compute_seconds", "attributed_cost_usd"]
    ].sum()
    capacity = capacity_cost_usd(pricing, window_seconds)
    periods = usage.groupby(list(by), sort=False) if by else [((), usage)]
    shared = pd.concat([_share_idle(frame, capacity) for _, frame in periods])
    shared["total_cost_usd"] = shared["attributed_cost_usd"] + shared["idle_cost_usd"]
    return shared[[*keys, *COST_COLUMNS]].reset_index(drop=True).astype({"n": "int64"})


def _attributed(pricing: PricingConfig, model: str, resource: str, ms: float, n: int) -> float:
    price = pricing.price_for(model)
    per_second = price.gpu_per_second if resource == "gpu" else price.cpu_per_second
    return ms / 1000.0 * per_second + n * price.per_request


def _share_idle(usage: pd.DataFrame, capacity: float) -> pd.DataFrame:
    attributed = usage["attributed_cost_usd"]
    idle = max(capacity - float(attributed.sum()), 0.0)
    weights = attributed if attributed.sum() > 0 else usage["n"].astype(float)
    total_weight = float(weights.sum())
    share = weights / total_weight if total_weight > 0 else weights * 0.0
    return usage.assign(idle_cost_usd=idle * share)


CostRow = tuple[str, str, str, int, dict[str, Measurement]]


def cost_rows(costs: pd.DataFrame) -> Iterator[CostRow]:
    """(model, version, tenant, n, measurements) at four levels per model.

    Levels: version x tenant, version x all tenants, all versions x tenant, all versions x all.
    """
    if costs.empty:
        return
    frame = costs.assign(all_=ALL)
    levels = (
        ("model_version", "tenant"),
        ("model_version", "all_"),
        ("all_", "tenant"),
        ("all_", "all_"),
    )
    for version_column, tenant_column in levels:
        grouped = frame.groupby(["model_name", version_column, tenant_column], sort=True)
        for (model, version, tenant), group in grouped:
            yield str(model), str(version), str(tenant), int(group["n"].sum()), _measure(group)


def _measure(group: pd.DataFrame) -> dict[str, Measurement]:
    n = int(group["n"].sum())
    attributed = float(group["attributed_cost_usd"].sum())
    idle = float(group["idle_cost_usd"].sum())
    endpoints = {
        str(endpoint): {
            "n": int(part["n"].sum()),
            "attributed_cost_usd": float(part["attributed_cost_usd"].sum()),
            "idle_cost_usd": float(part["idle_cost_usd"].sum()),
        }
        for endpoint, part in group.groupby("endpoint", sort=True)
    }
    details = {"compute_seconds": float(group["compute_seconds"].sum()), "endpoints": endpoints}
    return {
        "attributed_cost_usd": Measurement(attributed, details),
        "idle_cost_usd": Measurement(idle, details),
        "total_cost_usd": Measurement(attributed + idle, details),
        "cost_per_1k_predictions_usd": Measurement(
            attributed / n * 1000.0 if n else None, {"n": n}
        ),
    }
