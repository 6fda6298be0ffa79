"""The report's charts: matplotlib figures rendered to PNG bytes (matplotlib loads only here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from monitors.charts import new_figure, png
from monitors.finops.figures import HISTORY_DAYS, WeeklyFigures, usd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PALETTE = {"usage": "#2f6db5", "shared": "#9bbbe0", "unallocated": "#d9d9d9", "alert": "#c8372d"}


def render_charts(figures: WeeklyFigures) -> dict[str, bytes]:
    """PNG charts keyed by name; charts without anything to draw are left out."""
    charts: dict[str, bytes] = {}
    if figures.spend.current > 0 or figures.has_traffic:
        charts["daily"] = png(_daily_chart(figures))
    if float(figures.history["total_cost_usd"].sum()) > 0:
        charts["trend"] = png(_trend_chart(figures))
    if figures.has_traffic:
        charts["tenants"] = png(_compare_chart(figures.by_tenant, ["tenant"], "Spend by tenant"))
        models = figures.by_model_version
        charts["models"] = png(
            _compare_chart(models, ["model_name", "model_version"], "Spend by model and version")
        )
        endpoints = figures.by_endpoint
        charts["endpoints"] = png(_compare_chart(endpoints, ["endpoint"], "Spend by endpoint"))
    budgeted = figures.budgets.dropna(subset=["weekly_budget_usd"])
    if not budgeted.empty:
        charts["budgets"] = png(_budget_chart(budgeted))
    return charts


def _dollar_axis(axis: Any, which: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    scale = axis.yaxis if which == "y" else axis.xaxis
    scale.set_major_formatter(FuncFormatter(lambda v, _: usd(v) if v else "$0"))
    scale.set_major_locator(MaxNLocator(nbins=5))
    axis.grid(axis=which, color="#e5e5e5")
    axis.set_axisbelow(True)
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)


def _daily_chart(f: WeeklyFigures) -> Figure:
    figure = new_figure()
    axis = figure.add_subplot()
    labels = [f"{d:%a %d}" for d in f.days["day"]]
    bottom = [0.0] * len(labels)
    layers = (
        ("attributed_cost_usd", "usage", "Usage"),
        ("idle_cost_usd", "shared", "Idle (shared)"),
        ("unallocated_idle_usd", "unallocated", "Idle (unallocated)"),
    )
    for column, colour, label in layers:
        values = f.days[column].astype(float).tolist()
        axis.bar(labels, values, bottom=bottom, color=PALETTE[colour], label=label, width=0.6)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_title(f"Daily spend, {f.week.label}", loc="left")
    figure.legend(frameon=False, ncols=3, loc="outside upper right")
    _dollar_axis(axis)
    return figure


def _trend_chart(f: WeeklyFigures) -> Figure:
    figure = new_figure()
    axis = figure.add_subplot()
    days = [pd.Timestamp(d) for d in f.history["day"]]
    axis.plot(days, f.history["total_cost_usd"], color="#444444", label="Total spend")
    axis.plot(days, f.history["attributed_cost_usd"], color=PALETTE["usage"], label="Usage")
    axis.axvspan(
        pd.Timestamp(f.week.start) - pd.Timedelta(hours=12),
        pd.Timestamp(f.week.end) - pd.Timedelta(hours=12),
        color="#f2f2f2",
        label=f.week.label,
    )
    flagged = f.anomalies[f.anomalies["flagged"]]
    if not flagged.empty:
        axis.scatter(
            [pd.Timestamp(d) for d in flagged["day"]],
            flagged["usage_cost_usd"],
            color=PALETTE["alert"],
            zorder=3,
            label="Stands out",
        )
    axis.set_ylim(bottom=0)
    axis.set_title(f"Spend over the {HISTORY_DAYS} days to the week's end", loc="left")
    figure.legend(frameon=False, ncols=4, loc="outside upper right")
    axis.xaxis.set_major_formatter(_date_formatter())
    _dollar_axis(axis)
    return figure


def _date_formatter() -> Any:
    from matplotlib.dates import DateFormatter

    return DateFormatter("%d %b")  # type: ignore[no-untyped-call]


def _compare_chart(frame: pd.DataFrame, keys: Sequence[str], title: str) -> Figure:
    shown = frame.head(12).iloc[::-1]
    labels = [" ".join(str(row[k]) for k in keys) for _, row in shown.iterrows()]
    figure = new_figure(max(2.2, 0.9 + 0.45 * len(labels)))
    axis = figure.add_subplot()
    positions = list(range(len(labels)))
    axis.barh(
        [p + 0.2 for p in positions],
        shown["previous_total_cost_usd"],
        height=0.4,
        color=PALETTE["unallocated"],
        label="Week before",
    )
    axis.barh(
        [p - 0.2 for p in positions],
        shown["total_cost_usd"],
        height=0.4,
        color=PALETTE["usage"],
        label="This week",
    )
    axis.set_yticks(positions, labels)
    axis.set_title(title, loc="left")
    figure.legend(frameon=False, ncols=2, loc="outside upper right")
    _dollar_axis(axis, "x")
    return figure


def _budget_chart(budgets: pd.DataFrame) -> Figure:
    figure = new_figure(max(2.6, 1.2 + 0.5 * len(budgets)))
    week_axis, month_axis = figure.subplots(1, 2, sharey=True)
    labels = budgets["tenant"].astype(str).tolist()[::-1]
    rows = budgets.iloc[::-1]
    for axis, actual, budget, title in (
        (week_axis, "week_actual_usd", "weekly_budget_usd", "This week: actual vs budget"),
        (month_axis, "forecast_usd", "month_budget_usd", "Month-end forecast vs budget"),
    ):
        over = rows[actual] > rows[budget]
        colours = [PALETTE["alert"] if o else PALETTE["usage"] for o in over]
        axis.barh(labels, rows[actual], color=colours, height=0.5)
        axis.scatter(rows[budget], labels, marker="|", s=400, color="#222222", label="Budget")
        axis.set_title(title, loc="left")
        _dollar_axis(axis, "x")
    figure.legend(*week_axis.get_legend_handles_labels(), frameon=False, loc="outside upper right")
    return figure
