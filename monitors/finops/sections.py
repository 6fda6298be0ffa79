"""The report's sections in order, with their text, tables and charts (HTML and Markdown alike)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from core.timeutil import IsoWeek
from monitors.finops.figures import (
    ANOMALY_MIN_USD,
    ANOMALY_Z,
    BASELINE_DAYS,
    HISTORY_DAYS,
    MIN_BASELINE_DAYS,
    WeeklyFigures,
    usd,
)
from monitors.finops.tables import (
    ANOMALY_COLUMNS,
    BUDGET_COLUMNS,
    DAY_COLUMNS,
    IDLE_COLUMNS,
    MOVER_COLUMNS,
    PER_THOUSAND_COLUMNS,
    USAGE_COLUMNS,
    Column,
    Table,
    key_columns,
    pct,
    signed_pct,
)


def report_stem(week: IsoWeek) -> str:
    """The report's file names start with this."""
    return f"finops-{week.label}"


@dataclass(frozen=True)
class Section:
    """One part of the report, rendered alike in HTML and Markdown."""

    anchor: str
    title: str
    paragraphs: Sequence[str]
    tables: Sequence[Table] = ()
    charts: Sequence[str] = ()


def sections(figures: WeeklyFigures, charts: dict[str, bytes]) -> list[Section]:
    """The report's sections in order (charts only where they were drawn)."""

    def drawn(*names: str) -> list[str]:
        return [name for name in names if name in charts]

    quiet = [] if figures.has_traffic else ["No traffic this week."]
    f = figures
    return [
        Section(
            "daily",
            "Total spend and its trend by day",
            _daily_text(f),
            [Table(f.days, DAY_COLUMNS)],
            drawn("daily", "trend"),
        ),
        Section(
            "tenants",
            "Spend by tenant",
            quiet,
            _tables(f.by_tenant, key_columns(("tenant", "Tenant")) + USAGE_COLUMNS),
            drawn("tenants"),
        ),
        Section(
            "models",
            "Spend by model and version",
            quiet,
            _tables(
                f.by_model_version,
                key_columns(("model_name", "Model"), ("model_version", "Version")) + USAGE_COLUMNS,
            ),
            drawn("models"),
        ),
        Section(
            "endpoints",
            "Spend by endpoint",
            quiet,
            _tables(f.by_endpoint, key_columns(("endpoint", "Endpoint")) + USAGE_COLUMNS),
            drawn("endpoints"),
        ),
        Section(
            "per-1k",
            "Cost per 1,000 predictions",
            [
                "Usage per 1k is the cost monitor's cost_per_1k_predictions_usd: the worker CPU "
                "time the predictions used (HTTP, validation, inference, logging), priced, plus "
                "the request fees. All-in adds each model's share of idle capacity."
            ],
            _tables(f.per_thousand, PER_THOUSAND_COLUMNS),
        ),
        Section(
            "week-over-week",
            "Week-over-week change and top movers",
            _change_text(f),
            _tables(f.movers, MOVER_COLUMNS),
        ),
        Section(
            "idle",
            "Idle and shared cost",
            _idle_text(f),
            _tables(f.by_tenant, IDLE_COLUMNS),
        ),
        Section(
            "budgets",
            "Budget against actual",
            _budget_text(f),
            _tables(f.budgets, BUDGET_COLUMNS),
            drawn("budgets"),
        ),
        Section(
            "anomalies",
            "Days that stand out",
            _anomaly_text(f),
            [Table(f.anomalies, ANOMALY_COLUMNS)],
        ),
        Section("method", "How these figures are computed", METHOD),
    ]


def span(week: IsoWeek) -> str:
    """The week's first and last day, e.g. Mon 16 Nov to Sun 22 Nov 2026."""
    return f"{week.start:%a %d %b} to {week.end - timedelta(days=1):%a %d %b %Y}"


def _tables(frame: pd.DataFrame, columns: Sequence[Column]) -> list[Table]:
    return [Table(frame, columns)] if not frame.empty else []


def _daily_text(f: WeeklyFigures) -> list[str]:
    idle = f.idle
    return [
        f"{f.week.label} ({span(f.week)}): total spend {usd(f.spend.current)}, of which "
        f"usage {usd(f.usage.current)} and idle capacity {usd(idle.idle_usd)}. The trend "
        f"chart shows the {HISTORY_DAYS} days up to the week's end; red dots mark days that "
        "stand out."
    ]


def _change_text(f: WeeklyFigures) -> list[str]:
    def line(name: str, change: Any, show: Callable[[float], str]) -> str:
        return (
            f"{name}: {show(change.current)} against {show(change.previous)} the week before "
            f"({signed_pct(change.pct)})."
        )

    lines = [
        line("Total spend", f.spend, usd),
        line("Usage cost", f.usage, usd),
        line("Predictions", f.predictions, lambda v: f"{int(v):,}"),
    ]
    if f.movers.empty:
        lines.append("No tenant, endpoint and model changed its spend.")
    else:
        lines.append("Top movers by tenant, endpoint and model (largest change in spend first):")
    return lines


def cpu_hours(seconds: float) -> str:
    """CPU seconds as CPU hours, with the decimals a small figure needs."""
    hours = seconds / 3600.0
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:,.2f}" if hours >= 0.1 else f"{hours:.4f}"


def _idle_text(f: WeeklyFigures) -> list[str]:
    idle = f.idle
    fees = f"Request fees came to {usd(idle.fee_usd)} on top."
    if not idle.replicas:
        return [
            "No capacity is provisioned (pricing.capacity.replicas is 0): the workers' busy time "
            f"is paid per use, {cpu_hours(idle.busy_seconds)} CPU hours for "
            f"{usd(idle.usage_cost_usd)}, so nothing sits idle. {fees}"
        ]
    replicas = f"{idle.replicas} replica{'s' if idle.replicas != 1 else ''}"
    lines = [
        f"Provisioned capacity: {replicas} of {idle.cpus:g} CPU, "
        f"{cpu_hours(idle.capacity_seconds)} CPU hours over the billed days for "
        f"{usd(idle.capacity_cost_usd)}. Requests kept the workers busy (HTTP, validation, "
        f"inference, logging) for {cpu_hours(idle.busy_seconds)} of them "
        f"({pct(idle.utilisation_pct)}), {usd(idle.usage_cost_usd)} at the capacity's price per "
        f"CPU second; the other {cpu_hours(idle.idle_seconds)} CPU hours "
        f"({usd(idle.idle_usd)}, {pct(idle.idle_pct)} of capacity) sat idle: "
        f"{usd(idle.shared_idle_usd)} shared across the tenants that used each day, in "
        f"proportion to their busy time, and {usd(idle.unallocated_idle_usd)} unallocated (days "
        f"without any traffic). {fees}",
    ]
    if idle.peak is not None and idle.peak_utilisation_pct is not None:
        lines.append(
            f"The busiest hour ({idle.peak.start:%a %d %b %H:00} UTC) kept the workers busy for "
            f"{cpu_hours(idle.peak.busy_seconds)} CPU hours, "
            f"{pct(idle.peak_utilisation_pct)} of the capacity's CPU in that hour."
        )
    return lines


def _budget_text(f: WeeklyFigures) -> list[str]:
    if f.budgets.empty:
        return ["No tenant has a weekly budget (tenants.<name>.weekly_budget_usd) and none spent."]
    month = f"{f.week.month_start:%B %Y}"
    remaining = int(f.budgets["remaining_days"].iloc[0])
    return [
        f"Actual is the tenant's spend this week, idle share included. Month-end forecast for "
        f"{month}: the month's spend up to the end of the week plus the week's daily run rate "
        f"(its spend divided by its billed days) times the {remaining} days left in the month. "
        "The month's budget is the weekly budget x days in the month / 7."
    ]


def _anomaly_text(f: WeeklyFigures) -> list[str]:
    flagged = f.anomalies[f.anomalies["flagged"]]
    verdict = (
        "No day stood out."
        if flagged.empty
        else "Stand out: " + ", ".join(f"{d:%a %d %b}" for d in flagged["day"]) + "."
    )
    return [
        "Each day's usage cost against the same kind of day (weekdays against weekdays, "
        f"weekend days against weekend days) among the billed days in the {BASELINE_DAYS} "
        f"before it (at least {MIN_BASELINE_DAYS} needed): robust (modified) z-score "
        "0.6745 x (x - median) / MAD, or (x - median) / (1.2533 x mean absolute deviation) "
        f"when the MAD is 0. A day stands out at |z| >= {ANOMALY_Z} and a difference of at "
        f"least {usd(ANOMALY_MIN_USD)}. Usage, not total spend, because idle sharing floors "
        "each day's total at its capacity cost.",
        verdict,
    ]


METHOD = [
    "Source: the stored predictions, aggregated per UTC day in SQL from their per-minute "
    "rollups (prediction_rollups; the predictions table itself when monitors.source is raw): "
    "predictions, requests (a bulk request once) "
    "and busy time, the worker CPU time the service measured for each request (HTTP, "
    "validation, inference, logging; busy_ms).",
    "Capacity, per UTC day: replicas x CPUs x 24 h of CPU time for replicas x hourly rate x "
    "24 h. Usage cost: each request's busy time at the capacity's price per CPU second; idle "
    "cost: the capacity's CPU time no request used, at the same price, so usage + idle = "
    "capacity. Idle is shared across the day's usage in proportion to busy time (as OpenCost "
    "does). A day on which requests used more CPU time than provisioned takes its capacity "
    "from the measured busy time; with no capacity provisioned (replicas 0) busy time is paid "
    "per use at the model's price per CPU (and GPU) second and nothing is idle.",
    "Attributed cost = usage + a fee per request (per request, not per bulk item), from pricing "
    "in the configuration; the same function (monitors.cost.compute_costs) prices the cost "
    "monitor. Capacity is billed from the day of the store's first prediction; on billed days "
    "without traffic it stays unallocated. Total spend = capacity + fees = usage + fees + "
    "shared idle + unallocated idle.",
    "Week over week compares with the ISO week before; movers are the tenant, endpoint and model "
    "combinations whose total spend changed most.",
]
