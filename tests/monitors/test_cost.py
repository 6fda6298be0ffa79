"""Cost attribution: busy time priced at the capacity's rate, fees per request, idle shared."""

import numpy as np
import pandas as pd
import pytest

from core.config import CapacityConfig, Price, PricingConfig
from monitors.cost import capacity_cost_usd, compute_costs, cost_rows, period_capacity

# 2 replicas of 2 CPUs for $7.20 an hour each: 4 CPU seconds a second for $0.004, so a busy
# CPU second costs $0.001.
PRICING = PricingConfig(
    default=Price(cpu_per_second=0.01, gpu_per_second=0.1, per_request=0.0001),
    models={"risk_scorer": Price(cpu_per_second=0.02, gpu_per_second=0.2, per_request=0.0)},
    capacity=CapacityConfig(replicas=2, hourly_rate_usd=7.2, cpus=2),
)
PER_USE = PRICING.model_copy(update={"capacity": CapacityConfig(replicas=0)})
COLUMNS = [
    "model_name",
    "model_version",
    "tenant",
    "endpoint",
    "resource_class",
    "n",
    "requests",
    "compute_ms",
    "busy_ms",
]
TC, RS = "ticket_classifier", "risk_scorer"
TOTALS = pd.DataFrame(
    [
        (TC, "v1", "acme", "classify_ticket", "cpu", 100, 100, 200.0, 20_000.0),
        (TC, "v1", "acme", "classify_ticket", "gpu", 10, 10, 500.0, 10_000.0),
        (TC, "v1", "globex", "classify_tickets", "cpu", 300, 10, 1000.0, 60_000.0),
        (RS, "r1", "acme", "predict_risk", "cpu", 50, 50, 400.0, 10_000.0),
    ],
    columns=COLUMNS,
)


def _row(costs, **key):
    mask = pd.Series(True, index=costs.index)
    for column, value in key.items():
        mask &= costs[column] == value
    return costs[mask].iloc[0]


def test_busy_time_is_priced_at_the_capacitys_cpu_second_and_fees_per_request():
    costs = compute_costs(TOTALS, PRICING, window_seconds=100)
    acme = _row(costs, model_name=TC, tenant="acme")
    assert acme["busy_seconds"] == pytest.approx(30.0)
    assert acme["compute_seconds"] == pytest.approx(0.7)
    assert acme["usage_cost_usd"] == pytest.approx(30 * 0.001)
    assert acme["fee_usd"] == pytest.approx(110 * 0.0001)
    assert acme["attributed_cost_usd"] == pytest.approx(0.03 + 0.011)
    bulk = _row(costs, tenant="globex")
    assert (bulk["n"], bulk["requests"]) == (300, 10)
    assert bulk["fee_usd"] == pytest.approx(10 * 0.0001)  # per request, not per bulk item
    risk = _row(costs, model_name=RS)
    assert risk["attributed_cost_usd"] == pytest.approx(10 * 0.001)  # no fee for this model


def test_busy_plus_idle_is_the_capacity_in_cpu_seconds_and_dollars():
    costs = compute_costs(TOTALS, PRICING, window_seconds=100)
    capacity = period_capacity(PRICING, 100, costs["busy_seconds"].sum())
    assert (capacity.seconds, capacity.cost_usd) == pytest.approx((400.0, 0.4))
    assert capacity.busy_seconds + capacity.idle_seconds == pytest.approx(capacity.seconds)
    usage, idle = costs["usage_cost_usd"].sum(), costs["idle_cost_usd"].sum()
    assert usage == pytest.approx(100 * 0.001)
    assert usage + idle == pytest.approx(capacity_cost_usd(PRICING, 100))
    assert costs["total_cost_usd"].sum() == pytest.approx(0.4 + costs["fee_usd"].sum())
    ratio = costs["idle_cost_usd"] / costs["busy_seconds"]  # shared by busy time
    assert ratio.min() == pytest.approx(ratio.max())


def test_busy_time_beyond_the_provisioned_cpu_becomes_the_capacity():
    costs = compute_costs(TOTALS, PRICING, window_seconds=10)  # 40 CPU seconds, 100 used
    capacity = period_capacity(PRICING, 10, 100.0)
    assert capacity.measured
    assert capacity.seconds == pytest.approx(100.0)
    assert (costs["idle_cost_usd"] == 0).all()
    assert costs["usage_cost_usd"].sum() == pytest.approx(capacity_cost_usd(PRICING, 10))


def test_paid_per_use_prices_busy_time_per_model_and_leaves_nothing_idle():
    costs = compute_costs(TOTALS, PER_USE, window_seconds=100)
    acme = _row(costs, model_name=TC, tenant="acme")
    # CPU seconds at the CPU price; the GPU row's inference seconds at the GPU price besides.
    assert acme["usage_cost_usd"] == pytest.approx(30 * 0.01 + 0.5 * 0.1)
    risk = _row(costs, model_name=RS)
    assert risk["usage_cost_usd"] == pytest.approx(10 * 0.02)
    assert (costs["idle_cost_usd"] == 0).all()
    capacity = period_capacity(PER_USE, 100, 100.0, costs["usage_cost_usd"].sum())
    assert capacity.idle_seconds == 0
    assert capacity.busy_cost_usd == pytest.approx(costs["usage_cost_usd"].sum())


def test_periods_given_by_extra_columns_each_get_their_own_capacity():
    daily = pd.concat([TOTALS.assign(day="2026-11-16"), TOTALS.head(1).assign(day="2026-11-17")])
    costs = compute_costs(daily, PRICING, window_seconds=86_400, by=["day"])
    per_day = costs.groupby("day")[["total_cost_usd", "fee_usd"]].sum()
    capacity = capacity_cost_usd(PRICING, 86_400)
    assert (per_day["total_cost_usd"] - per_day["fee_usd"]).tolist() == pytest.approx(
        [capacity] * 2
    )


def test_idle_is_shared_by_requests_when_no_busy_time_was_measured():
    idle_only = TOTALS.assign(busy_ms=0.0)
    costs = compute_costs(idle_only, PRICING, window_seconds=3600)
    share = costs["idle_cost_usd"] / costs["idle_cost_usd"].sum()
    assert share.tolist() == pytest.approx((costs["requests"] / costs["requests"].sum()).tolist())


def test_empty_totals_give_an_empty_frame():
    assert compute_costs(TOTALS.head(0), PRICING, 60).empty


def test_in_every_period_busy_and_idle_add_up_to_the_capacity():
    """Property over seeded inputs: any usage, any capacity, provisioned or paid per use."""
    rng = np.random.default_rng(17)
    for _ in range(200):
        rows = int(rng.integers(1, 12))
        totals = pd.DataFrame(
            {
                "model_name": rng.choice([TC, RS], rows),
                "model_version": rng.choice(["v1", "v2"], rows),
                "tenant": rng.choice(["acme", "globex", "initech"], rows),
                "endpoint": rng.choice(["classify_ticket", "classify_tickets"], rows),
                "resource_class": rng.choice(["cpu", "gpu"], rows),
                "n": rng.integers(1, 500, rows),
                "requests": rng.integers(1, 50, rows),
                "compute_ms": rng.uniform(0, 5e4, rows),
                "busy_ms": rng.choice([0.0, 1.0], rows) * rng.uniform(0, 5e6, rows),
                "day": rng.choice(["d1", "d2", "d3"], rows),
            }
        )
        capacity = CapacityConfig(
            replicas=int(rng.integers(0, 4)),
            hourly_rate_usd=float(rng.uniform(0, 5)),
            cpus=float(rng.uniform(0.25, 8)),
        )
        pricing = PRICING.model_copy(update={"capacity": capacity})
        seconds = float(rng.choice([60.0, 3600.0, 86_400.0]))
        costs = compute_costs(totals, pricing, seconds, by=["day"])
        for _, period in costs.groupby("day"):
            busy = float(period["busy_seconds"].sum())
            cap = period_capacity(pricing, seconds, busy, float(period["usage_cost_usd"].sum()))
            assert cap.idle_seconds >= 0
            assert busy + cap.idle_seconds == pytest.approx(cap.seconds)
            used = float(period["usage_cost_usd"].sum() + period["idle_cost_usd"].sum())
            assert used == pytest.approx(cap.cost_usd, abs=1e-12)
            total = float(period["total_cost_usd"].sum())
            assert total == pytest.approx(cap.cost_usd + float(period["fee_usd"].sum()), abs=1e-12)


def test_rows_roll_up_per_version_tenant_and_all():
    costs = compute_costs(TOTALS, PRICING, window_seconds=100)
    rows = {(m, v, t): (n, ms) for m, v, t, n, ms in cost_rows(costs)}
    assert set(rows) == {
        (TC, "v1", "acme"),
        (TC, "v1", "globex"),
        (TC, "v1", "*"),
        (TC, "*", "acme"),
        (TC, "*", "globex"),
        (TC, "*", "*"),
        (RS, "r1", "acme"),
        (RS, "r1", "*"),
        (RS, "*", "acme"),
        (RS, "*", "*"),
    }
    n, measurements = rows[(TC, "v1", "*")]
    assert n == 410
    attributed = measurements["attributed_cost_usd"].value
    # Per 1,000 predictions: the busy time the predictions used as well as their fees.
    assert attributed == pytest.approx(90 * 0.001 + 120 * 0.0001)
    assert measurements["cost_per_1k_predictions_usd"].value == pytest.approx(
        attributed / 410 * 1000
    )
    details = measurements["total_cost_usd"].details
    assert details["requests"] == 120
    assert details["busy_seconds"] == pytest.approx(90.0)
    assert set(details["endpoints"]) == {"classify_ticket", "classify_tickets"}
