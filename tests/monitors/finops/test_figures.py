"""The report's figures against a hand-priced fixture, on SQLite and on PostgreSQL.

Every expected number below is worked out by hand from HAND_RECORDS and HAND_CONFIG (see
records.py): a day of capacity costs 1 x $0.05/h x 24 h = $1.20; the ticket classifier costs
$0.01 per CPU second, $0.1 per GPU second and $0.001 per request; the risk scorer $0.02 per CPU
second and $0.002 per request. Capacity is billed from Tue 10 Nov, the first prediction.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from core.timeutil import IsoWeek, midnight
from monitors.cost import compute_costs, cost_rows
from monitors.finops.figures import weekly_figures
from monitors.finops.markdown_page import render_markdown
from monitors.finops.report import load_figures, write_weekly_report
from monitors.finops.tables import csv_tables
from storage.aggregates import compute_totals
from storage.writer import write_predictions
from tests.monitors.finops.records import HAND_CONFIG, HAND_RECORDS

WEEK = IsoWeek(2026, 47)
DAY = 1.20
# Tue 10 Nov (the week before): acme 20 s + 1 request, globex 10 s + 1 request.
ACME_BEFORE = 0.201 * DAY / 0.302  # usage plus its share of the day's idle 1.20 - 0.302
GLOBEX_BEFORE = 0.101 * DAY / 0.302
# 2026-W47: Mon acme 0.301 (v1 cpu) + 0.201 (v2 gpu); Tue globex 2 x 5 s + 2 requests = 0.102;
# Wed initech 100 s x 0.02 + 0.002 = 2.002 (beyond the day's capacity: no idle);
# Thu to Sat nothing (capacity unallocated); Sun initech 0 s + 1 request = 0.002.
SPEND = DAY + DAY + 2.002 + 3 * DAY + DAY
USAGE = 0.502 + 0.102 + 2.002 + 0.002
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
    assert figures.spend.current == money(9.202) == money(SPEND)
    assert figures.spend.previous == money(6 * DAY)  # Tue 10 to Sun 15 Nov, billed
    assert figures.usage.current == money(USAGE)
    assert figures.usage.previous == money(0.302)
    assert figures.predictions.current == 6
    assert figures.predictions.previous == 2
    days = figures.days
    assert days["total_cost_usd"].tolist() == [
        money(t) for t in (1.2, 1.2, 2.002, 1.2, 1.2, 1.2, 1.2)
    ]
    assert days["attributed_cost_usd"].tolist() == [
        money(u) for u in (0.502, 0.102, 2.002, 0, 0, 0, 0.002)
    ]
    assert days["unallocated_idle_usd"].tolist() == [money(u) for u in (0, 0, 0, 1.2, 1.2, 1.2, 0)]
    assert days["n"].tolist() == [2, 2, 1, 0, 0, 0, 1]


def test_spend_by_tenant_model_version_and_endpoint(figures):
    tenants = rows(figures.by_tenant, "tenant")
    assert tenants["acme"]["total_cost_usd"] == money(1.2)
    assert tenants["acme"]["attributed_cost_usd"] == money(0.502)
    assert tenants["acme"]["idle_cost_usd"] == money(0.698)
    assert tenants["acme"]["previous_total_cost_usd"] == money(ACME_BEFORE)
    assert tenants["globex"]["change_usd"] == money(1.2 - GLOBEX_BEFORE)
    assert tenants["initech"]["total_cost_usd"] == money(2.002 + 1.2)
    assert tenants["initech"]["n"] == 2
    assert figures.by_tenant["tenant"].tolist() == ["initech", "acme", "globex"]

    models = {
        (r["model_name"], r["model_version"]): r
        for r in figures.by_model_version.to_dict("records")
    }
    assert models[("ticket_classifier", "v1")]["total_cost_usd"] == money(0.301 * DAY / 0.502)
    assert models[("ticket_classifier", "v2")]["total_cost_usd"] == money(0.201 * DAY / 0.502 + 1.2)
    assert models[("ticket_classifier", "v1")]["previous_total_cost_usd"] == money(1.2)
    assert models[("risk_scorer", "r1")]["total_cost_usd"] == money(3.202)

    endpoints = rows(figures.by_endpoint, "endpoint")
    assert endpoints["classify_ticket"]["total_cost_usd"] == money(1.2)
    assert endpoints["classify_tickets"]["total_cost_usd"] == money(1.2)
    assert endpoints["predict_risk"]["total_cost_usd"] == money(3.202)


def test_cost_per_thousand_predictions(figures):
    models = rows(figures.per_thousand, "model_name")
    ticket = models["ticket_classifier"]
    assert ticket["n"] == 4  # the failed request counts: it was computed and billed
    assert ticket["usage_per_1k_usd"] == money(0.604 / 4 * 1000)
    assert ticket["all_in_per_1k_usd"] == money(2.4 / 4 * 1000)
    assert ticket["previous_usage_per_1k_usd"] == money(0.302 / 2 * 1000)
    assert ticket["change_pct"] == money(0.0)
    assert models["risk_scorer"]["usage_per_1k_usd"] == money(2.004 / 2 * 1000)


def test_week_over_week_movers(figures):
    movers = figures.movers
    assert movers["tenant"].tolist() == ["initech", "globex", "acme"]
    assert movers["change_usd"].tolist() == [
        money(3.202),
        money(1.2 - GLOBEX_BEFORE),
        money(1.2 - ACME_BEFORE),
    ]
    assert figures.spend.pct == pytest.approx((9.202 - 7.2) / 7.2 * 100)
    assert figures.summary[0] == (
        "Spend rose 28% week over week to $9.20 (from $7.20) for 6 predictions, driven by "
        "initech's predict_risk (risk_scorer, +$3.20)."
    )


def test_idle_and_shared_cost(figures):
    idle = figures.idle
    assert idle.capacity_cost_usd == money(7 * DAY)
    assert idle.shared_idle_usd == money(0.698 + 1.098 + 1.198)
    assert idle.unallocated_idle_usd == money(3 * DAY)
    assert idle.idle_pct == pytest.approx((2.994 + 3.6) / 8.4 * 100)


def test_budgets_and_month_end_forecast(figures):
    budgets = rows(figures.budgets, "tenant")
    assert set(budgets) == {"acme", "globex", "hooli", "initech"}  # umbrella: no budget, no spend
    acme = budgets["acme"]
    # November: 30 days, 8 left after Sun 22 Nov; the week's 7 days are all billed.
    assert acme["month_to_date_usd"] == money(ACME_BEFORE + 1.2)
    assert acme["forecast_usd"] == money(ACME_BEFORE + 1.2 + 8 * 1.2 / 7)
    assert acme["month_budget_usd"] == money(1.0 * 30 / 7)
    assert acme["status"] == "over weekly budget"
    globex = budgets["globex"]
    assert globex["forecast_usd"] == money(GLOBEX_BEFORE + 1.2 + 8 * 1.2 / 7)
    assert globex["week_used_pct"] == money(60.0)
    assert globex["status"] == "on track"
    initech = budgets["initech"]
    assert initech["forecast_usd"] == money(3.202 + 8 * 3.202 / 7)
    assert initech["forecast_pct_of_budget"] == money(
        (3.202 + 8 * 3.202 / 7) / (0.5 * 30 / 7) * 100
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
    assert wednesday["robust_z"] == pytest.approx(0.6745 * (2.002 - 0.051) / 0.051)
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
    assert float(tenants["initech"]["total_cost_usd"]) == money(3.202)
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
        [(date(2026, 10, 30), *key, 1, 60_000.0), (date(2026, 11, 1), *key, 1, 0.0)],
        columns=[*columns, "n", "compute_ms"],
    )
    week = IsoWeek.parse("2026-W44")  # Mon 26 Oct to Sun 1 Nov
    figures = weekly_figures(
        totals, week, HAND_CONFIG.pricing, {"acme": 1.0}, first_day=date(2026, 10, 30)
    )
    acme = rows(figures.budgets, "tenant")["acme"]
    # Billed: Fri 30 Oct (0.601 of usage, the rest idle), Sat 31 (unallocated), Sun 1 Nov.
    assert acme["week_actual_usd"] == money(2 * DAY)
    assert acme["month"] == "2026-11"
    assert acme["month_to_date_usd"] == money(DAY)  # Sun 1 Nov only
    assert acme["run_rate_usd_per_day"] == money(2 * DAY / 3)
    assert acme["remaining_days"] == 29
    assert acme["forecast_usd"] == money(DAY + 29 * 2 * DAY / 3)
    assert figures.spend.current == money(3 * DAY)


def test_budget_gauge_at_week_end_matches_the_report_per_tenant(store_engine, figures):
    from monitors.week_costs import tenant_week_costs

    last_moment = midnight(WEEK.start) + timedelta(days=7, microseconds=-1)
    gauge = tenant_week_costs(store_engine, last_moment, HAND_CONFIG.pricing)
    report = rows(figures.by_tenant, "tenant")
    assert gauge == {t: money(r["total_cost_usd"]) for t, r in report.items()}
    assert gauge["acme"] == money(1.2)
    assert gauge["initech"] == money(2.002 + 1.2)
