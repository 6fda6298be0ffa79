"""The FinOps dashboard: cost by tenant, version and endpoint, per 1k predictions, budgets."""

from __future__ import annotations

from alerts.spec import BudgetAlert
from dashboards.layout import Row
from dashboards.links import Runbooks
from dashboards.panels import Query, sql_table, stat, timeseries

COST = 'servewatch_cost_usd{model_name=~"$model", tenant=~"$tenant"}'
WINDOW_NOTE = "over the latest cost window of the monitors"


def cost() -> Row:
    return Row(
        "Cost",
        [
            timeseries(
                "Cost by tenant",
                f"Cost {WINDOW_NOTE}: attributed compute plus each tenant's share of idle "
                "capacity.",
                "currencyUSD",
                [Query(f"sum by (tenant) ({COST})", "{{tenant}}")],
                width=8,
                stack=True,
            ),
            timeseries(
                "Cost by model version",
                f"Cost {WINDOW_NOTE}, per model and version.",
                "currencyUSD",
                [
                    Query(
                        f"sum by (model_name, model_version) ({COST})",
                        "{{model_name}} {{model_version}}",
                    )
                ],
                width=8,
                stack=True,
            ),
            timeseries(
                "Cost by endpoint",
                f"Cost {WINDOW_NOTE}, per business endpoint.",
                "currencyUSD",
                [Query(f"sum by (endpoint) ({COST})", "{{endpoint}}")],
                width=8,
                stack=True,
            ),
            timeseries(
                "Cost per 1,000 predictions",
                f"Attributed cost per 1,000 predictions {WINDOW_NOTE}, per model and version.",
                "currencyUSD",
                [
                    Query(
                        "max by (model_name, model_version) "
                        '(servewatch_cost_per_1k_predictions_usd{model_name=~"$model"})',
                        "{{model_name}} {{model_version}}",
                    )
                ],
                width=8,
            ),
            timeseries(
                "Idle and attributed cost",
                f"Cost {WINDOW_NOTE} split into compute attributed to predictions and "
                "provisioned capacity that sat idle.",
                "currencyUSD",
                [Query(f"sum by (kind) ({COST})", "{{kind}}")],
                width=8,
                stack=True,
            ),
            stat(
                "Idle share of cost",
                f"Share of the cost {WINDOW_NOTE} paid for idle provisioned capacity.",
                "percentunit",
                [
                    Query(
                        'sum(servewatch_cost_usd{model_name=~"$model", tenant=~"$tenant", '
                        f'kind="idle"}})\n/\nsum({COST})',
                        instant=True,
                    )
                ],
                width=8,
                height=8,
                thresholds=(("green", None), ("orange", 0.5), ("red", 0.8)),
            ),
        ],
    )


def budgets(levels: tuple[BudgetAlert, ...], runbooks: Runbooks) -> Row:
    ordered = sorted(levels, key=lambda level: level.share)
    colors = ["orange"] * (len(ordered) - 1) + ["red"]
    steps = (("green", None), *((c, lv.share) for c, lv in zip(colors, ordered, strict=True)))
    week = 'servewatch_tenant_week_cost_usd{tenant=~"$tenant"}'
    budget = 'servewatch_tenant_weekly_budget_usd{tenant=~"$tenant"}'
    return Row(
        "Budgets",
        [
            stat(
                "Weekly budget burn per tenant",
                "Share of each tenant's weekly budget spent in the current ISO week; the "
                "colours follow the budget alert levels of alerts/spec.yaml.",
                "percentunit",
                [
                    Query(
                        f"max by (tenant) ({week})\n/\nmax by (tenant) ({budget})",
                        "{{tenant}}",
                        instant=True,
                    )
                ],
                width=8,
                height=8,
                thresholds=steps,
                text_mode="value_and_name",
                links=runbooks.links(*(level.alert for level in ordered)),
            ),
            timeseries(
                "Week-to-date cost and budget",
                "Cost of the current ISO week so far per tenant, against its weekly budget.",
                "currencyUSD",
                [
                    Query(f"max by (tenant) ({week})", "{{tenant}}"),
                    Query(f"max by (tenant) ({budget})", "budget {{tenant}}"),
                ],
                width=8,
                links=runbooks.links(*(level.alert for level in ordered)),
            ),
            timeseries(
                "Inference compute by tenant (live)",
                "Inference seconds attributed to each tenant per second of wall time, straight "
                "from the service (cost charges the whole busy time: the store's table beside).",
                "short",
                [
                    Query(
                        "sum by (tenant) (rate(servewatch_compute_seconds_total"
                        '{model_name=~"$model", tenant=~"$tenant"}[$__rate_interval]))',
                        "{{tenant}}",
                    )
                ],
                width=8,
                stack=True,
            ),
            sql_table(
                "Predictions and compute by tenant and endpoint (store)",
                "Predictions, inference seconds and busy seconds (the worker CPU each request "
                "was charged, inference time where none was measured) in the selected range, "
                "from the store's per-minute rollups (whole minutes; the newest appear once the "
                "scheduler's next tick has folded them).",
                "SELECT tenant, endpoint, model_name, model_version,\n"
                "       sum(n) AS predictions,\n"
                "       sum(compute_ms) / 1000.0 AS compute_seconds,\n"
                "       sum(busy_ms) / 1000.0 AS busy_seconds\n"
                "FROM prediction_rollups\n"
                "WHERE $__timeFilter(minute)\n"
                "GROUP BY tenant, endpoint, model_name, model_version\n"
                "ORDER BY predictions DESC",
            ),
        ],
    )


def finops_rows(levels: tuple[BudgetAlert, ...], runbooks: Runbooks) -> list[Row]:
    return [cost(), budgets(levels, runbooks)]
