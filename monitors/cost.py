"""Cost attribution: the workers' busy time priced per period, idle capacity shared out, and
a fee per request.

Pure functions over aggregate frames (`storage.aggregates.compute_totals`), shared by the cost
monitor, the budget gauges and the weekly FinOps report. The model is OpenCost's allocation by
usage: a period (a monitor window, a UTC day) has a capacity in CPU seconds and what it cost;
each request is charged the worker CPU seconds it was measured to use (`busy_ms`: HTTP,
validation, inference, logging; see service.busy_share) at the capacity's price per CPU second,
and what no request used is idle, shared across the period's usage in proportion to busy time.

- Provisioned (`pricing.capacity.replicas` > 0): the capacity is replicas x cpus CPU seconds a
  second, for replicas x the hourly rate. Should requests have used more CPU seconds than that
  (the replicas have more cores than `cpus` says), the capacity is the measured busy time:
  nothing is idle, and a busy second costs less.
- Paid per use (replicas 0): the capacity is the measured busy time, priced per model (CPU
  seconds at `cpu_per_second`; on GPU, inference seconds at `gpu_per_second` besides); nothing
  is idle.

Either way busy + idle = capacity, in CPU seconds and in dollars. The request fee
(`per_request`) is charged per request, not per item of a bulk request, on top.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from core.config import PricingConfig
from core.contracts import ALL, metric_names
from monitors.results import Measurement

MONITOR = "cost"
METRICS = metric_names(MONITOR)
USAGE_KEYS: tuple[str, ...] = ("model_name", "model_version", "tenant", "endpoint")
USAGE_SUMS: tuple[str, ...] = ("n", "requests", "compute_seconds", "busy_seconds")
COST_COLUMNS: tuple[str, ...] = (
    *USAGE_SUMS,
    "usage_cost_usd",  # busy time priced
    "fee_usd",
    "attributed_cost_usd",  # usage + fees
    "idle_cost_usd",
    "total_cost_usd",
)


@dataclass(frozen=True)
class Capacity:
    """One period's capacity against the busy time requests used: busy + idle = capacity."""

    seconds: float  # CPU seconds
    cost_usd: float
    busy_seconds: float
    measured: bool  # taken from the busy time (paid per use, or more used than provisioned)

    @property
    def idle_seconds(self) -> float:
        return self.seconds - self.busy_seconds

    @property
    def price_per_second(self) -> float:
        return self.cost_usd / self.seconds if self.seconds > 0 else 0.0

    @property
    def idle_cost_usd(self) -> float:
        return self.idle_seconds * self.price_per_second

    @property
    def busy_cost_usd(self) -> float:
        return self.cost_usd - self.idle_cost_usd


def capacity_cost_usd(pricing: PricingConfig, seconds: float) -> float:
    """What the provisioned replicas cost over `seconds`, used or not."""
    capacity = pricing.capacity
    return capacity.replicas * capacity.hourly_rate_usd * seconds / 3600.0


def period_capacity(
    pricing: PricingConfig, period_seconds: float, busy_seconds: float, per_use_usd: float = 0.0
) -> Capacity:
    """The capacity of a period in which requests kept the workers busy `busy_seconds`.

    `per_use_usd`: the busy time priced per model, what it costs when paid per use.
    """
    provisioned = pricing.capacity
    if provisioned.replicas == 0:
        return Capacity(busy_seconds, per_use_usd, busy_seconds, measured=True)
    configured = provisioned.replicas * provisioned.cpus * period_seconds
    cost = capacity_cost_usd(pricing, period_seconds)
    if busy_seconds > configured:
        return Capacity(busy_seconds, cost, busy_seconds, measured=True)
    return Capacity(configured, cost, busy_seconds, measured=False)


def compute_costs(
    totals: pd.DataFrame,
    pricing: PricingConfig,
    window_seconds: float,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Usage, fees, attributed, idle and total cost per model, version, tenant and endpoint.

    `totals` has the columns of `storage.aggregates.compute_totals` (model_name, model_version,
    tenant, endpoint, resource_class, n, requests, compute_ms, busy_ms) plus any `by` columns
    (e.g. `day`); each distinct `by` value is a period of `window_seconds` with its own capacity.
    """
    keys = [*by, *USAGE_KEYS]
    if totals.empty:
        return pd.DataFrame(columns=[*keys, *COST_COLUMNS])
    prices = [pricing.price_for(str(model)) for model in totals["model_name"]]
    compute_seconds = totals["compute_ms"].astype(float) / 1000.0
    busy_seconds = totals["busy_ms"].astype(float) / 1000.0
    gpu = (totals["resource_class"] == "gpu").to_numpy()
    priced = totals.assign(
        compute_seconds=compute_seconds,
        busy_seconds=busy_seconds,
        per_use_usd=[
            busy * price.cpu_per_second + (compute * price.gpu_per_second if on_gpu else 0.0)
            for busy, compute, on_gpu, price in zip(
                busy_seconds, compute_seconds, gpu, prices, strict=True
            )
        ],
        fee_usd=[
            int(requests) * price.per_request
            for requests, price in zip(totals["requests"], prices, strict=True)
        ],
    )
    usage = priced.groupby(keys, as_index=False, sort=True)[
        [*USAGE_SUMS, "per_use_usd", "fee_usd"]
    ].sum()
    periods = usage.groupby(list(by), sort=False) if by else [((), usage)]
    priced_periods = [_price_period(frame, pricing, window_seconds) for _, frame in periods]
    costs = pd.concat(priced_periods)[[*keys, *COST_COLUMNS]].reset_index(drop=True)
    return costs.astype({"n": "int64", "requests": "int64"})


def _price_period(usage: pd.DataFrame, pricing: PricingConfig, seconds: float) -> pd.DataFrame:
    busy = usage["busy_seconds"]
    capacity = period_capacity(
        pricing, seconds, float(busy.sum()), float(usage["per_use_usd"].sum())
    )
    per_use = pricing.capacity.replicas == 0
    usage_cost = usage["per_use_usd"] if per_use else busy * capacity.price_per_second
    # OpenCost shares idle by usage; a period whose requests all measured no time shares it
    # by request.
    weights = busy if float(busy.sum()) > 0 else usage["requests"].astype(float)
    total_weight = float(weights.sum())
    share = weights / total_weight if total_weight > 0 else weights * 0.0
    idle = capacity.idle_cost_usd * share
    attributed = usage_cost + usage["fee_usd"]
    return usage.assign(
        usage_cost_usd=usage_cost,
        attributed_cost_usd=attributed,
        idle_cost_usd=idle,
        total_cost_usd=attributed + idle,
    )


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
            "requests": int(part["requests"].sum()),
            "busy_seconds": float(part["busy_seconds"].sum()),
            "attributed_cost_usd": float(part["attributed_cost_usd"].sum()),
            "idle_cost_usd": float(part["idle_cost_usd"].sum()),
        }
        for endpoint, part in group.groupby("endpoint", sort=True)
    }
    details = {
        "requests": int(group["requests"].sum()),
        "compute_seconds": float(group["compute_seconds"].sum()),
        "busy_seconds": float(group["busy_seconds"].sum()),
        "usage_cost_usd": float(group["usage_cost_usd"].sum()),
        "fee_usd": float(group["fee_usd"].sum()),
        "endpoints": endpoints,
    }
    return {
        "attributed_cost_usd": Measurement(attributed, details),
        "idle_cost_usd": Measurement(idle, details),
        "total_cost_usd": Measurement(attributed + idle, details),
        "cost_per_1k_predictions_usd": Measurement(
            attributed / n * 1000.0 if n else None, {"n": n}
        ),
    }
