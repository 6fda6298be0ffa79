"""Cost attribution and idle-cost sharing."""

import pandas as pd
import pytest

from core.config import CapacityConfig, Price, PricingConfig
from monitors.cost import capacity_cost_usd, compute_costs, cost_rows

PRICING = PricingConfig(
    default=Price(cpu_per_second=0.001, gpu_per_second=0.01, per_request=0.0001),
    models={"risk_scorer": Price(cpu_per_second=0.002, gpu_per_second=0.02, per_request=0.0)},
    capacity=CapacityConfig(replicas=2, hourly_rate_usd=3.6),  # 0.002 $/s for both replicas
)
COLUMNS = ["model_name", "model_version", "tenant", "endpoint", "resource_class", "n", "compute_ms"]
TOTALS = pd.DataFrame(
    [
        ("ticket_classifier", "v1", "acme", "classify_ticket", "cpu", 100, 2000.0),
        ("ticket_classifier", "v1", "acme", "classify_ticket", "gpu", 10, 500.0),
        ("ticket_classifier", "v1", "globex", "classify_tickets", "cpu", 300, 1000.0),
        ("risk_scorer", "r1", "acme", "predict_risk", "cpu", 50, 4000.0),
    ],
    columns=COLUMNS,
)


def _row(costs, **key):
    mask = pd.Series(True, index=costs.index)
    for column, value in key.items():
        mask &= costs[column] == value
    return costs[mask].iloc[0]


def test_attributed_cost_prices_compute_time_and_requests_per_model():
    costs = compute_costs(TOTALS, PRICING, window_seconds=100)
    acme = _row(costs, model_name="ticket_classifier", tenant="acme")
    assert acme["attributed_cost_usd"] == pytest.approx(2.0 * 0.001 + 0.5 * 0.01 + 110 * 0.0001)
    assert acme["n"] == 110
    assert acme["compute_seconds"] == pytest.approx(2.5)
    risk = _row(costs, model_name="risk_scorer")
    assert risk["attributed_cost_usd"] == pytest.approx(4.0 * 0.002)


def test_idle_capacity_is_shared_in_proportion_to_attributed_cost():
    costs = compute_costs(TOTALS, PRICING, window_seconds=100)
    capacity = capacity_cost_usd(PRICING, 100)
    assert capacity == pytest.approx(0.2)
    attributed = costs["attributed_cost_usd"].sum()
    assert costs["idle_cost_usd"].sum() == pytest.approx(capacity - attributed)
    assert costs["total_cost_usd"].sum() == pytest.approx(capacity)
    ratio = costs["idle_cost_usd"] / costs["attributed_cost_usd"]
    assert ratio.min() == pytest.approx(ratio.max())


def test_no_idle_cost_when_usage_exceeds_capacity():
    costs = compute_costs(TOTALS, PRICING, window_seconds=1)
    assert (costs["idle_cost_usd"] == 0).all()


def test_periods_given_by_extra_columns_each_get_their_own_capacity():
    daily = pd.concat([TOTALS.assign(day="2026-11-16"), TOTALS.head(1).assign(day="2026-11-17")])
    costs = compute_costs(daily, PRICING, window_seconds=86_400, by=["day"])
    per_day = costs.groupby("day")["total_cost_usd"].sum()
    assert per_day.tolist() == pytest.approx([capacity_cost_usd(PRICING, 86_400)] * 2)


def test_idle_is_shared_by_request_count_when_nothing_is_attributed():
    free = PricingConfig(default=Price(cpu_per_second=0, gpu_per_second=0, per_request=0))
    costs = compute_costs(TOTALS, free, window_seconds=3600)
    share = costs["idle_cost_usd"] / costs["idle_cost_usd"].sum()
    assert share.tolist() == pytest.approx((costs["n"] / costs["n"].sum()).tolist())


def test_empty_totals_give_an_empty_frame():
    assert compute_costs(TOTALS.head(0), PRICING, 60).empty


def test_rows_roll_up_per_version_tenant_and_all():
    costs = compute_costs(TOTALS, PRICING, window_seconds=100)
    rows = {(m, v, t): (n, ms) for m, v, t, n, ms in cost_rows(costs)}
    assert set(rows) == {
        ("ticket_classifier", "v1", "acme"),
        ("ticket_classifier", "v1", "globex"),
        ("ticket_classifier", "v1", "*"),
        ("ticket_classifier", "*", "acme"),
        ("ticket_classifier", "*", "globex"),
        ("ticket_classifier", "*", "*"),
        ("risk_scorer", "r1", "acme"),
        ("risk_scorer", "r1", "*"),
        ("risk_scorer", "*", "acme"),
        ("risk_scorer", "*", "*"),
    }
    n, measurements = rows[("ticket_classifier", "v1", "*")]
    assert n == 410
    attributed = measurements["attributed_cost_usd"].value
    assert measurements["cost_per_1k_predictions_usd"].value == pytest.approx(
        attributed / 410 * 1000
    )
    assert set(measurements["total_cost_usd"].details["endpoints"]) == {
        "classify_ticket",
        "classify_tickets",
    }
