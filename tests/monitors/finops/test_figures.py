"""The report's figures against a hand-priced fixture, on SQLite and on PostgreSQL.

Every expected number below is worked out by hand from HAND_RECORDS and HAND_CONFIG (see
records.py): a day of capacity is 24 CPU hours for 1 x $0.05/h x 24 h = $1.20, so a busy CPU
hour costs $0.05; the ticket classifier's request fee is $0.001, the risk scorer's $0.002, on
top. Capacity is billed from Tue 10 Nov, the first prediction.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import load_app_config
from core.timeutil import IsoWeek, midnight
from monitors.aggregate_source import aggregate_source
from monitors.cost import compute_costs, cost_rows
from monitors.finops.figures import budgets_of, capacity_lines, data_range, weekly_figures
from monitors.finops.markdown_page import render_markdown
from monitors.finops.report import load_figures, write_weekly_report
from monitors.finops.tables import csv_tables
from storage.aggregates import COMPUTE_SUMS, compute_totals
from storage.writer import write_predictions
from tests.monitors.finops.records import (
    DEMO_CONFIG,
    HAND_CONFIG,
    HAND_RECORDS,
    demo_records,
    demo_week_totals,
)

WEEK = IsoWeek(2026, 47)
DAY = 1.20
# Tue 10 Nov (the week before): acme 4 busy hours ($0.20) + a fee, globex 2 ($0.10) + a fee;
# the day's idle $0.90 is shared 4:2 by busy time.
ACME_BEFORE = 0.201 + 0.6
GLOBEX_BEFORE = 0.101 + 0.3
# 2026-W47: Mon acme 6 h (v1 cpu) + 4 h (v2 gpu) = 0.50 + 2 fees; Tue globex 2 x 1 h = 0.10 +
# 2 fees; Wed initech 20 h = 1.00 + 0.002; Thu to Sat nothing (capacity unallocated); Sun
# initech 0 h + 0.002. Each billed day is $1.20 of capacity plus its fees.
FEES = 0.002 + 0.002 + 0.002 + 0.002
SPEND = 7 * DAY + FEES
USAGE = 0.502 + 0.102 + 1.002 + 0.002
EXACT = 1e-6  # tighter than a cent


@pytest.fixture
def figures(store_engine):
    write_predictions(store_engine, HAND_RECORDS)
    return load_figures(store_engine, HAND_CONFIG, WEEK)


def money(value):
    return pytest.approx(value, abs=EXACT)


def rows(frame, key):
    return {row[key]: row for row in frame.to_dict("records")}


def test_total_spend_and_its_days(figures):
    assert figures.spend.current == money(8.408) == money(SPEND)
    assert figures.spend.previous == money(6 * DAY + 0.002)  # Tue 10 to Sun 15 Nov, billed
    assert figures.usage.current == money(USAGE)
    assert figures.usage.previous == money(0.302)
    assert figures.predictions.current == 6
    assert figures.predictions.previous == 2
    days = figures.days
    assert days["total_cost_usd"].tolist() == [
        money(t) for t in (1.202, 1.202, 1.202, 1.2, 1.2, 1.2, 1.202)
    ]
    assert days["attributed_cost_usd"].tolist() == [
        money(u) for u in (0.502, 0.102, 1.002, 0, 0, 0, 0.002)
    ]
    assert days["unallocated_idle_usd"].tolist() == [money(u) for u in (0, 0, 0, 1.2, 1.2, 1.2, 0)]
    assert days["n"].tolist() == [2, 2, 1, 0, 0, 0, 1]
    assert days["busy_seconds"].tolist() == [money(h * 3600) for h in (10, 2, 20, 0, 0, 0, 0)]
    assert days["idle_seconds"].tolist() == [money(h * 3600) for h in (14, 22, 4, 24, 24, 24, 24)]
    assert days["utilisation_pct"].iloc[0] == money(10 / 24 * 100)


def test_spend_by_tenant_model_version_and_endpoint(figures):
    tenants = rows(figures.by_tenant, "tenant")
    assert tenants["acme"]["total_cost_usd"] == money(1.202)
    assert tenants["acme"]["attributed_cost_usd"] == money(0.502)
    assert tenants["acme"]["idle_cost_usd"] == money(0.7)
    assert tenants["acme"]["previous_total_cost_usd"] == money(ACME_BEFORE)
    assert tenants["globex"]["change_usd"] == money(1.202 - GLOBEX_BEFORE)
    assert tenants["globex"]["requests"] == 2
    assert tenants["initech"]["total_cost_usd"] == money(2 * 1.202)
    assert tenants["initech"]["n"] == 2
    assert figures.by_tenant["tenant"].tolist() == ["initech", "acme", "globex"]

    models = {
        (r["model_name"], r["model_version"]): r
        for r in figures.by_model_version.to_dict("records")
    }
    # Monday's idle $0.70 is shared 6:4 by busy time between v1 and v2.
    assert models[("ticket_classifier", "v1")]["total_cost_usd"] == money(0.301 + 0.42)
    assert models[("ticket_classifier", "v2")]["total_cost_usd"] == money(0.201 + 0.28 + 1.202)
    assert models[("ticket_classifier", "v1")]["previous_total_cost_usd"] == money(1.202)
    assert models[("risk_scorer", "r1")]["total_cost_usd"] == money(2.404)

    endpoints = rows(figures.by_endpoint, "endpoint")
    assert endpoints["classify_ticket"]["total_cost_usd"] == money(1.202)
    assert endpoints["classify_tickets"]["total_cost_usd"] == money(1.202)
    assert endpoints["predict_risk"]["total_cost_usd"] == money(2.404)


def test_cost_per_thousand_predictions(figures):
    models = rows(figures.per_thousand, "model_name")
    ticket = models["ticket_classifier"]
    assert ticket["n"] == 4  # the failed request counts: it was computed and billed
    # Usage per 1k is the busy time the predictions used, priced, plus their fees.
    assert ticket["usage_per_1k_usd"] == money(0.604 / 4 * 1000)
    assert ticket["all_in_per_1k_usd"] == money(2.404 / 4 * 1000)
    assert ticket["previous_usage_per_1k_usd"] == money(0.302 / 2 * 1000)
    assert ticket["change_pct"] == money(0.0)
    assert models["risk_scorer"]["usage_per_1k_usd"] == money(1.004 / 2 * 1000)


def test_week_over_week_movers(figures):
    movers = figures.movers
    assert movers["tenant"].tolist() == ["initech", "globex", "acme"]
    assert movers["change_usd"].tolist() == [
        money(2.404),
        money(1.202 - GLOBEX_BEFORE),
        money(1.202 - ACME_BEFORE),
    ]
    assert figures.spend.pct == pytest.approx((8.408 - 7.202) / 7.202 * 100)
    assert figures.summary[0] == (
        "Spend rose 17% week over week to $8.41 (from $7.20) for 6 predictions, driven by "
        "initech's predict_risk (risk_scorer, +$2.40)."
    )


def test_idle_and_shared_cost(figures):
    idle = figures.idle
    assert idle.capacity_cost_usd == money(7 * DAY)
    assert idle.capacity_seconds == money(7 * 86_400)
    assert idle.busy_seconds == money(32 * 3600)
    assert idle.usage_cost_usd == money(1.6)
    assert idle.shared_idle_usd == money(0.7 + 1.1 + 0.2 + 1.2)
    assert idle.unallocated_idle_usd == money(3 * DAY)
    assert idle.fee_usd == money(FEES)
    assert idle.idle_pct == pytest.approx((3.2 + 3.6) / 8.4 * 100)
    assert idle.utilisation_pct == pytest.approx(32 / (7 * 24) * 100)
    assert idle.peak is not None
    assert idle.peak.start == datetime(2026, 11, 18, 9, tzinfo=UTC)
    assert idle.peak.busy_seconds == money(20 * 3600)


def test_budgets_and_month_end_forecast(figures):
    budgets = rows(figures.budgets, "tenant")
    assert set(budgets) == {"acme", "globex", "hooli", "initech"}  # umbrella: no budget, no spend
    acme = budgets["acme"]
    # November: 30 days, 8 left after Sun 22 Nov; the week's 7 days are all billed.
    assert acme["month_to_date_usd"] == money(ACME_BEFORE + 1.202)
    assert acme["forecast_usd"] == money(ACME_BEFORE + 1.202 + 8 * 1.202 / 7)
    assert acme["month_budget_usd"] == money(1.0 * 30 / 7)
    assert acme["status"] == "over weekly budget"
    globex = budgets["globex"]
    assert globex["forecast_usd"] == money(GLOBEX_BEFORE + 1.202 + 8 * 1.202 / 7)
    assert globex["week_used_pct"] == money(60.1)
    assert globex["status"] == "on track"
    initech = budgets["initech"]
    assert initech["forecast_usd"] == money(2.404 + 8 * 2.404 / 7)
    assert initech["forecast_pct_of_budget"] == money(
        (2.404 + 8 * 2.404 / 7) / (0.5 * 30 / 7) * 100
    )
    assert budgets["hooli"]["forecast_usd"] == money(0.0)
    assert budgets["hooli"]["status"] == "on track"


def test_days_that_stand_out(figures):
    anomalies = rows(figures.anomalies, "day")
    days = sorted(anomalies)
    monday, wednesday = anomalies[days[0]], anomalies[days[2]]
    # Monday has 4 billed weekdays before it (Tue 10 to Fri 13 Nov): too few to judge.
    assert monday["baseline_days"] == 4
    assert math.isnan(monday["robust_z"])
    # Wednesday: weekdays Tue 10 .. Tue 17 Nov = 0.302, 0, 0, 0, 0.502, 0.102: median 0.051,
    # absolute deviations 0.251, 0.051, 0.051, 0.051, 0.451, 0.051: MAD 0.051.
    assert wednesday["baseline_days"] == 6
    assert wednesday["baseline_median_usd"] == money(0.051)
    assert wednesday["robust_z"] == pytest.approx(0.6745 * (1.002 - 0.051) / 0.051)
    assert [d for d in days if anomalies[d]["flagged"]] == [days[2]]


def test_csv_tables_carry_the_figures(figures):
    tables = csv_tables(figures)
    assert set(tables) == {
        "by-day",
        "by-tenant",
        "by-model-version",
        "by-endpoint",
        "cost-per-1k",
        "movers",
        "budgets",
        "anomalies",
    }
    tenants = {r["tenant"]: r for r in csv.DictReader(io.StringIO(tables["by-tenant"]))}
    assert float(tenants["initech"]["total_cost_usd"]) == money(2.404)
    assert float(tenants["acme"]["previous_total_cost_usd"]) == pytest.approx(ACME_BEFORE, abs=1e-6)
    days = list(csv.DictReader(io.StringIO(tables["by-day"])))
    assert [d["day"] for d in days][:2] == ["2026-11-16", "2026-11-17"]
    assert sum(float(d["total_cost_usd"]) for d in days) == money(SPEND)


def test_an_empty_week_says_there_was_no_traffic(store_engine, tmp_path):
    now = datetime(2026, 11, 30, tzinfo=UTC)
    paths = write_weekly_report(store_engine, HAND_CONFIG, "2026-W47", tmp_path, now=now)
    page = (tmp_path / "finops-2026-W47.html").read_text()
    markdown = (tmp_path / "finops-2026-W47.md").read_text()
    for text in (page, markdown):
        assert "There was no traffic in 2026-W47: no predictions were recorded." in text
    assert "$0.00" in markdown
    assert len(paths) == 10
    for chart in ("daily", "trend", "tenants", "models", "endpoints"):
        assert f'id="chart-{chart}"' not in page  # nothing to draw
    assert 'id="chart-budgets"' in page  # the budgets are still there to compare with


def test_a_quiet_week_after_traffic_still_bills_idle_capacity(store_engine):
    write_predictions(store_engine, HAND_RECORDS[:2])  # traffic on Tue 10 Nov only
    figures = load_figures(store_engine, HAND_CONFIG, WEEK)
    assert not figures.has_traffic
    assert figures.spend.current == money(7 * DAY)
    assert figures.idle.unallocated_idle_usd == money(7 * DAY)
    assert figures.summary == [
        "There was no traffic in 2026-W47: no predictions were recorded.",
        "Provisioned capacity still cost $8.40, all of it idle.",
        "The week before served 2 predictions for $7.20.",
    ]
    assert figures.idle.idle_seconds == money(7 * 86_400)
    assert "No traffic this week." in render_markdown(figures)


def test_usage_cost_agrees_with_the_cost_monitor_to_the_cent(store_engine, figures):
    start, end = midnight(WEEK.start), midnight(WEEK.end)
    monitor = compute_costs(
        compute_totals(store_engine, start, end), HAND_CONFIG.pricing, 7 * 86_400
    )
    per_model = {
        model: measurements
        for model, version, tenant, _, measurements in cost_rows(monitor)
        if version == tenant == "*"
    }
    ours = rows(figures.per_thousand, "model_name")
    assert set(per_model) == set(ours)
    for model, measurements in per_model.items():
        attributed = measurements["attributed_cost_usd"].value
        assert round(ours[model]["attributed_cost_usd"], 2) == round(attributed, 2)
        per_1k = measurements["cost_per_1k_predictions_usd"].value
        assert round(ours[model]["usage_per_1k_usd"], 2) == round(per_1k, 2)


def test_a_week_across_two_months_forecasts_from_the_new_month():
    columns = ["day", "model_name", "model_version", "tenant", "endpoint", "resource_class"]
    key = ("ticket_classifier", "v1", "acme", "classify_ticket", "cpu")
    totals = pd.DataFrame(
        [
            (date(2026, 10, 30), *key, 1, 1, 60_000.0, 12 * 3_600_000.0),
            (date(2026, 11, 1), *key, 1, 1, 0.0, 0.0),
        ],
        columns=[*columns, *COMPUTE_SUMS],
    )
    week = IsoWeek.parse("2026-W44")  # Mon 26 Oct to Sun 1 Nov
    figures = weekly_figures(
        totals, week, HAND_CONFIG.pricing, {"acme": 1.0}, first_day=date(2026, 10, 30)
    )
    acme = rows(figures.budgets, "tenant")["acme"]
    # Billed: Fri 30 Oct (12 busy hours, $0.60, the rest idle), Sat 31 (unallocated), Sun 1 Nov;
    # each of acme's days is the day's capacity plus a request fee.
    actual = 2 * (DAY + 0.001)
    assert acme["week_actual_usd"] == money(actual)
    assert acme["month"] == "2026-11"
    assert acme["month_to_date_usd"] == money(DAY + 0.001)  # Sun 1 Nov only
    assert acme["run_rate_usd_per_day"] == money(actual / 3)
    assert acme["remaining_days"] == 29
    assert acme["forecast_usd"] == money(DAY + 0.001 + 29 * actual / 3)
    assert figures.spend.current == money(3 * DAY + 0.002)


@pytest.mark.parametrize("kind", ["rollups", "raw"])
def test_budget_gauge_at_week_end_matches_the_report_per_tenant(store_engine, figures, kind):
    from monitors.week_costs import tenant_week_costs

    last_moment = midnight(WEEK.start) + timedelta(days=7, microseconds=-1)
    source = aggregate_source(store_engine, kind)
    gauge = tenant_week_costs(source, last_moment, HAND_CONFIG.pricing)
    report = rows(figures.by_tenant, "tenant")
    assert gauge == {t: money(r["total_cost_usd"]) for t, r in report.items()}
    assert gauge["acme"] == money(1.202)
    assert gauge["initech"] == money(2.404)


def _random_totals(rng: np.random.Generator, days: list[date]) -> pd.DataFrame:
    rows = int(rng.integers(0, 40))
    frame = pd.DataFrame(
        {
            "day": rng.choice(np.array(days, dtype=object), rows),
            "model_name": rng.choice(["ticket_classifier", "risk_scorer"], rows),
            "model_version": rng.choice(["v1", "v2"], rows),
            "tenant": rng.choice(["acme", "globex", "initech"], rows),
            "endpoint": rng.choice(["classify_ticket", "classify_tickets", "predict_risk"], rows),
            "resource_class": rng.choice(["cpu", "gpu"], rows),
            "n": rng.integers(1, 1_000, rows),
            "requests": rng.integers(1, 100, rows),
            "compute_ms": rng.uniform(0, 1e6, rows),
            # Now and then a day busier than its capacity, and rows without busy time.
            "busy_ms": rng.choice([0.0, 1.0, 1.0, 1.0], rows) * rng.uniform(0, 6e7, rows),
        }
    )
    return frame.groupby(["day", *frame.columns[1:6]], as_index=False).sum()


def test_in_every_report_attributed_and_idle_add_up_to_the_capacity():
    """Property over seeded inputs: every day and the week, in CPU seconds and dollars."""
    rng = np.random.default_rng(2026)
    start, end = data_range(WEEK)
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    for _ in range(60):
        capacity = {
            "replicas": int(rng.integers(0, 4)),
            "hourly_rate_usd": float(rng.uniform(0, 3)),
            "cpus": float(rng.uniform(0.25, 4)),
        }
        pricing = HAND_CONFIG.pricing.model_copy(
            update={"capacity": HAND_CONFIG.pricing.capacity.model_copy(update=capacity)}
        )
        totals = _random_totals(rng, days)
        first = days[int(rng.integers(0, len(days)))]
        figures = weekly_figures(totals, WEEK, pricing, {"acme": 1.0}, first)
        d = figures.days
        assert (d["idle_seconds"] >= -1e-9).all()
        assert (d["busy_seconds"] + d["idle_seconds"]).tolist() == pytest.approx(
            d["capacity_seconds"].tolist()
        )
        idle_usd = d["idle_cost_usd"] + d["unallocated_idle_usd"]
        assert (d["usage_cost_usd"] + idle_usd).tolist() == pytest.approx(
            d["capacity_cost_usd"].tolist(), abs=1e-9
        )
        assert d["total_cost_usd"].tolist() == pytest.approx(
            (d["capacity_cost_usd"] + d["fee_usd"]).tolist(), abs=1e-9
        )
        idle = figures.idle
        assert idle.busy_seconds + idle.idle_seconds == pytest.approx(idle.capacity_seconds)
        assert idle.usage_cost_usd + idle.idle_usd == pytest.approx(
            idle.capacity_cost_usd, abs=1e-9
        )
        spent = figures.by_tenant["total_cost_usd"].sum() + idle.unallocated_idle_usd
        assert spent == pytest.approx(figures.spend.current, abs=1e-9)


def _monday(busy_s: float) -> pd.DataFrame:
    """Daily totals: acme's ten requests on the week's Monday, busy for `busy_s`."""
    key = ("ticket_classifier", "v1", "acme", "classify_ticket", "cpu")
    columns = ["day", "model_name", "model_version", "tenant", "endpoint", "resource_class"]
    return pd.DataFrame(
        [(WEEK.start, *key, 10, 10, 1.0, busy_s * 1000)], columns=[*columns, *COMPUTE_SUMS]
    )


def _advice(replicas: int, peak_busy_s: float | None, busy_s: float = 7 * 3600.0) -> list[str]:
    """The summary's capacity lines for a week with `busy_s` of busy time on its Monday."""
    pricing = HAND_CONFIG.pricing.model_copy(
        update={"capacity": HAND_CONFIG.pricing.capacity.model_copy(update={"replicas": replicas})}
    )
    totals = _monday(busy_s)
    hourly = (
        None
        if peak_busy_s is None
        else pd.DataFrame(
            {
                "hour": [pd.Timestamp(midnight(WEEK.start)) + pd.Timedelta(hours=14)],
                "busy_ms": [peak_busy_s * 1000],
            }
        )
    )
    figures = weekly_figures(totals, WEEK, pricing, {}, WEEK.start, hourly)
    return capacity_lines(figures.idle)


def test_fewer_replicas_are_advised_only_when_the_busiest_hour_leaves_headroom():
    # Three replicas of one CPU: 3 CPU hours an hour. The busiest hour used 1 CPU hour (33 %):
    # two replicas would have run it at 50 %, within the 60 % target; one at 100 %.
    (line,) = _advice(3, peak_busy_s=3600.0)
    assert line == (
        "Requests used 1.4% of the capacity's CPU time; 99% sat idle, and the busiest hour "
        "(Mon 16 Nov 14:00 UTC) used 33% of the capacity: 2 replicas instead of 3 would have run "
        "it at no more than 60% of their CPU, saving about $8.40 a week."
    )
    # The same idle share, but a busiest hour of 1.5 CPU hours (50 %) needs all three.
    (line,) = _advice(3, peak_busy_s=5400.0)
    assert "fewer replicas would have run it above 60% of their CPU" in line
    assert "saving" not in line
    (line,) = _advice(1, peak_busy_s=900.0)
    assert line.endswith("One replica is the least there can be.")
    (line,) = _advice(1, peak_busy_s=3000.0)  # 83 % of one replica: one more is advised
    assert line.endswith(
        "above the 60% that leaves headroom: 2 replicas would have kept it within."
    )


def test_without_the_busiest_hour_no_replica_advice_is_given():
    assert _advice(3, peak_busy_s=None) == [
        "Requests used 1.4% of the capacity's CPU time; 99% sat idle."
    ]
    assert _advice(0, peak_busy_s=3600.0) == []  # paid per use: nothing idle to advise on


def test_a_day_busier_than_the_configured_capacity_takes_its_capacity_from_the_busy_time():
    (line,) = _advice(1, peak_busy_s=3600.0, busy_s=30 * 3600.0)
    assert line.startswith("On 1 day requests kept the workers busy for more CPU time than")
    totals = _monday(30 * 3600.0)
    monday = weekly_figures(totals, WEEK, HAND_CONFIG.pricing, {}, WEEK.start).days.iloc[0]
    assert bool(monday["capacity_measured"])
    assert monday["capacity_seconds"] == money(30 * 3600)
    assert monday["idle_seconds"] == money(0)
    assert monday["usage_cost_usd"] == money(DAY)  # the day's bill, at a lower price a second


def test_the_example_budgets_hold_for_a_demo_week():
    """A week of the demo stack's traffic, priced with examples/servewatch.yaml: every tenant
    on track and below the 80 % that raises ServewatchTenantBudgetNearlySpent, even with the
    measured busy time of bulk requests or risk scores off by a factor of two either way."""
    config = load_app_config(Path(__file__).parents[3] / "examples" / "servewatch.yaml")
    first = WEEK.start - timedelta(days=28)
    start, end = data_range(WEEK)
    days = [d for d in (start + timedelta(days=i) for i in range((end - start).days)) if d >= first]
    for bulk, risk in ((1, 1), (2, 1), (0.5, 1), (1, 2), (1, 0.5)):
        totals = demo_week_totals(days, bulk_scale=bulk, risk_scale=risk)
        figures = weekly_figures(totals, WEEK, config.pricing, budgets_of(config), first)
        budgets = rows(figures.budgets, "tenant")
        assert set(budgets) == set(config.tenants)
        for tenant, row in budgets.items():
            assert row["status"] == "on track", (bulk, risk, tenant, row)
            assert row["week_used_pct"] < 80, (bulk, risk, tenant, row)
        assert "All 3 budgeted tenants are on track." in figures.summary


def test_the_report_from_rollups_is_the_report_from_raw_rows(store_engine):
    """Five weeks of seeded traffic (a rollout, a spike, bulk requests, GPU rows): the week's
    figures are the same whether read from the rollups or from raw rows (to 1e-12)."""
    write_predictions(
        store_engine, demo_records(date(2026, 10, 19), date(2026, 11, 22), date(2026, 11, 18))
    )
    raw, rolled = (
        load_figures(store_engine, DEMO_CONFIG, WEEK, aggregate_source(store_engine, kind))
        for kind in ("raw", "rollups")
    )
    assert raw.has_traffic
    assert rolled.idle.peak is not None
    assert raw.idle.peak is not None
    assert rolled.idle.peak.start == raw.idle.peak.start
    assert rolled.idle.peak.busy_seconds == pytest.approx(raw.idle.peak.busy_seconds, rel=1e-12)
    for name in ("days", "history", "by_tenant", "by_model_version", "by_endpoint", "movers"):
        got, expected = getattr(rolled, name), getattr(raw, name)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-9)
    # Sums added in another order differ in the last bits: a page's cents may round apart
    # when a figure lies on a half cent, so the figures are compared, not their text.
    for name in ("spend", "usage", "predictions"):
        assert getattr(rolled, name).current == pytest.approx(getattr(raw, name).current, rel=1e-12)
