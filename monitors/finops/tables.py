"""The report's tables: columns with their headings and cell formatters, and the CSV export.

HTML and Markdown render the same columns; CSV keeps full precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from monitors.finops.figures import WeeklyFigures, percent, usd


@dataclass(frozen=True)
class Column:
    """One column of a rendered table: the frame's column, its heading and its formatter."""

    key: str
    heading: str
    show: Callable[[Any], str] = str
    numeric: bool = True


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def money(value: Any) -> str:
    return "–" if missing(value) else usd(float(value))


def signed_money(value: Any) -> str:
    if missing(value):
        return "–"
    return ("+" if float(value) > 0 else "") + usd(float(value))


def fine_money(value: Any) -> str:
    return "–" if missing(value) else f"${float(value):,.4f}"


def pct(value: Any) -> str:
    return "–" if missing(value) else percent(float(value))


def signed_pct(value: Any) -> str:
    return "new" if missing(value) else percent(float(value), signed=True)


def count(value: Any) -> str:
    return f"{int(value):,}"


def day_cell(value: Any) -> str:
    return f"{value:%a %Y-%m-%d}"


def z_score(value: Any) -> str:
    if missing(value):
        return "–"
    z = float(value)
    if math.isinf(z):
        return "+inf" if z > 0 else "-inf"
    return f"{z:+.1f}" if abs(z) >= 0.05 else "0.0"


def text(value: Any) -> str:
    return str(value)


def cpu_hours_cell(seconds: Any) -> str:
    return "–" if missing(seconds) else f"{float(seconds) / 3600.0:,.3f}"


USAGE_COLUMNS = (
    Column("n", "Predictions", count),
    Column("requests", "Requests", count),
    Column("attributed_cost_usd", "Usage", money),
    Column("idle_cost_usd", "Idle share", money),
    Column("total_cost_usd", "Total", money),
    Column("previous_total_cost_usd", "Week before", money),
    Column("change_usd", "Change", signed_money),
    Column("change_pct", "Change %", signed_pct),
    Column("share_pct", "Share", pct),
)
DAY_COLUMNS = (
    Column("day", "Day", day_cell, numeric=False),
    Column("n", "Predictions", count),
    Column("requests", "Requests", count),
    Column("utilisation_pct", "Utilisation", pct),
    Column("attributed_cost_usd", "Usage", money),
    Column("idle_cost_usd", "Idle (shared)", money),
    Column("unallocated_idle_usd", "Idle (unallocated)", money),
    Column("total_cost_usd", "Total", money),
)
PER_THOUSAND_COLUMNS = (
    Column("model_name", "Model", text, numeric=False),
    Column("n", "Predictions", count),
    Column("usage_per_1k_usd", "Usage per 1k", fine_money),
    Column("all_in_per_1k_usd", "All-in per 1k", fine_money),
    Column("previous_usage_per_1k_usd", "Usage per 1k, week before", fine_money),
    Column("change_pct", "Change %", signed_pct),
)
MOVER_COLUMNS = (
    Column("tenant", "Tenant", text, numeric=False),
    Column("endpoint", "Endpoint", text, numeric=False),
    Column("model_name", "Model", text, numeric=False),
    Column("previous_total_cost_usd", "Week before", money),
    Column("total_cost_usd", "This week", money),
    Column("change_usd", "Change", signed_money),
    Column("change_pct", "Change %", signed_pct),
)
IDLE_COLUMNS = (
    Column("tenant", "Tenant", text, numeric=False),
    Column("busy_seconds", "Busy (CPU h)", cpu_hours_cell),
    Column("attributed_cost_usd", "Usage", money),
    Column("idle_cost_usd", "Idle share", money),
    Column("total_cost_usd", "Total", money),
)
BUDGET_COLUMNS = (
    Column("tenant", "Tenant", text, numeric=False),
    Column("weekly_budget_usd", "Weekly budget", money),
    Column("week_actual_usd", "Actual", money),
    Column("week_used_pct", "Used", pct),
    Column("month_to_date_usd", "Month to date", money),
    Column("forecast_usd", "Month-end forecast", money),
    Column("month_budget_usd", "Month budget", money),
    Column("forecast_pct_of_budget", "Forecast / budget", pct),
    Column("status", "Status", text, numeric=False),
)
ANOMALY_COLUMNS = (
    Column("day", "Day", day_cell, numeric=False),
    Column("usage_cost_usd", "Usage", money),
    Column("baseline_days", "Baseline days", count),
    Column("baseline_median_usd", "Trailing median", money),
    Column("robust_z", "Robust z", z_score),
    Column("flagged", "Stands out", lambda v: "yes" if v else "", numeric=False),
)


def key_columns(*pairs: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(key, heading, text, numeric=False) for key, heading in pairs)


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    columns: Sequence[Column]


def csv_tables(figures: WeeklyFigures) -> dict[str, str]:
    """CSV text per table name (full precision, ISO dates)."""
    frames = {
        "by-day": figures.days,
        "by-tenant": figures.by_tenant,
        "by-model-version": figures.by_model_version,
        "by-endpoint": figures.by_endpoint,
        "cost-per-1k": figures.per_thousand,
        "movers": figures.movers,
        "budgets": figures.budgets,
        "anomalies": figures.anomalies,
    }
    return {name: frame.to_csv(index=False, float_format="%.6f") for name, frame in frames.items()}
