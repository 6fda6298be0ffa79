"""The weekly FinOps report: figures from the store rendered as HTML (embedded PNG charts),
Markdown and CSV tables, written atomically; plus `due_week` for the scheduler and the CLI.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import typer
from sqlalchemy import Engine, func, select

from core.config import AppConfig, Settings
from core.files import write_atomically
from core.timeutil import IsoWeek, MalformedWeekError, midnight, to_utc
from monitors.finops import (
    ANOMALY_MIN_USD,
    ANOMALY_Z,
    BASELINE_DAYS,
    HISTORY_DAYS,
    MIN_BASELINE_DAYS,
    WeeklyFigures,
    budgets_of,
    data_range,
    percent,
    usd,
    weekly_figures,
)
from monitors.finops_cli import DEFAULT_OUT_DIR, DatabaseUrlOption, OutDirOption, WeekOption
from storage.aggregates import daily_compute_totals
from storage.schema import predictions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Progress = Callable[[str], None]


class WeekNotOverError(ValueError):
    """The week has not ended yet: its figures would be partial."""


# ---------------------------------------------------------------------------- reading the store


def load_figures(engine: Engine, config: AppConfig, week: IsoWeek) -> WeeklyFigures:
    """The week's figures from the store's daily aggregates and the configured prices."""
    start, end = data_range(week)
    totals = daily_compute_totals(engine, midnight(start), midnight(end))
    first = first_prediction_day(engine, midnight(end))
    return weekly_figures(totals, week, config.pricing, budgets_of(config), first)


def first_prediction_day(engine: Engine, before: datetime) -> date | None:
    """UTC day of the store's first prediction before `before` (capacity is billed from then)."""
    statement = select(func.min(predictions.c.ts)).where(predictions.c.ts < to_utc(before))
    with engine.connect() as connection:
        first = connection.execute(statement).scalar()
    return to_utc(first).date() if first is not None else None


# ---------------------------------------------------------------------------- files


def report_stem(week: IsoWeek) -> str:
    return f"finops-{week.label}"


def html_path(out_dir: Path, week: IsoWeek) -> Path:
    """The HTML file; written last, so its presence means the week's report is complete."""
    return Path(out_dir) / f"{report_stem(week)}.html"


def write_weekly_report(
    engine: Engine,
    settings: Settings | AppConfig,
    week: str | IsoWeek,
    out_dir: Path,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the week's CSV tables, Markdown and HTML into `out_dir`; returns their paths."""
    target = IsoWeek.parse(week) if isinstance(week, str) else week
    require_week_over(target, now or datetime.now(UTC))
    config = settings.config if isinstance(settings, Settings) else settings
    step = progress or (lambda _: None)
    step("reading the store")
    figures = load_figures(engine, config, target)
    step("drawing charts")
    charts = render_charts(figures)
    step("writing files")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = report_stem(target)
    written = []
    for name, text in csv_tables(figures).items():
        written.append(write_atomically(out / f"{stem}-{name}.csv", text))
    written.append(write_atomically(out / f"{stem}.md", render_markdown(figures)))
    generated = to_utc(now or datetime.now(UTC))
    page = render_html(figures, charts, generated)
    written.append(write_atomically(html_path(out, target), page))
    return written


def require_week_over(week: IsoWeek, now: datetime) -> None:
    ends = midnight(week.end)
    if ends > to_utc(now):
        raise WeekNotOverError(
            f"week {week.label} has not ended yet (it ends {ends:%Y-%m-%d %H:%M} UTC)"
        )


def due_week(now: datetime, weekday: int, out_dir: Path) -> str | None:
    """The week whose report is due and not written yet, or None.

    A week's report is due from 00:00 UTC on ISO `weekday` of the following week; this is the
    latest such week (so a tick after downtime still writes it) unless its HTML exists.
    """
    if not 1 <= weekday <= 7:
        raise ValueError(f"weekday must be an ISO weekday 1..7, not {weekday}")
    moment = to_utc(now)
    this_week = IsoWeek.containing(moment.date())
    report_time = midnight(this_week.start + timedelta(days=weekday - 1))
    week = this_week.previous if moment >= report_time else this_week.previous.previous
    return None if html_path(out_dir, week).exists() else week.label


# ---------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    """One column of a rendered table: the frame's column, its heading and its formatter."""

    key: str
    heading: str
    show: Callable[[Any], str] = str
    numeric: bool = True


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _money(value: Any) -> str:
    return "–" if _missing(value) else usd(float(value))


def _signed_money(value: Any) -> str:
    if _missing(value):
        return "–"
    return ("+" if float(value) > 0 else "") + usd(float(value))


def _fine_money(value: Any) -> str:
    return "–" if _missing(value) else f"${float(value):,.4f}"


def _pct(value: Any) -> str:
    return "–" if _missing(value) else percent(float(value))


def _signed_pct(value: Any) -> str:
    return "new" if _missing(value) else percent(float(value), signed=True)


def _count(value: Any) -> str:
    return f"{int(value):,}"


def _day(value: Any) -> str:
    return f"{value:%a %Y-%m-%d}"


def _z(value: Any) -> str:
    if _missing(value):
        return "–"
    z = float(value)
    if math.isinf(z):
        return "+inf" if z > 0 else "-inf"
    return f"{z:+.1f}" if abs(z) >= 0.05 else "0.0"


def _text(value: Any) -> str:
    return str(value)


USAGE_COLUMNS = (
    Column("n", "Predictions", _count),
    Column("attributed_cost_usd", "Usage", _money),
    Column("idle_cost_usd", "Idle share", _money),
    Column("total_cost_usd", "Total", _money),
    Column("previous_total_cost_usd", "Week before", _money),
    Column("change_usd", "Change", _signed_money),
    Column("change_pct", "Change %", _signed_pct),
    Column("share_pct", "Share", _pct),
)
DAY_COLUMNS = (
    Column("day", "Day", _day, numeric=False),
    Column("n", "Predictions", _count),
    Column("attributed_cost_usd", "Usage", _money),
    Column("idle_cost_usd", "Idle (shared)", _money),
    Column("unallocated_idle_usd", "Idle (unallocated)", _money),
    Column("total_cost_usd", "Total", _money),
)
PER_THOUSAND_COLUMNS = (
    Column("model_name", "Model", _text, numeric=False),
    Column("n", "Predictions", _count),
    Column("usage_per_1k_usd", "Usage per 1k", _fine_money),
    Column("all_in_per_1k_usd", "All-in per 1k", _fine_money),
    Column("previous_usage_per_1k_usd", "Usage per 1k, week before", _fine_money),
    Column("change_pct", "Change %", _signed_pct),
)
MOVER_COLUMNS = (
    Column("tenant", "Tenant", _text, numeric=False),
    Column("endpoint", "Endpoint", _text, numeric=False),
    Column("model_name", "Model", _text, numeric=False),
    Column("previous_total_cost_usd", "Week before", _money),
    Column("total_cost_usd", "This week", _money),
    Column("change_usd", "Change", _signed_money),
    Column("change_pct", "Change %", _signed_pct),
)
IDLE_COLUMNS = (
    Column("tenant", "Tenant", _text, numeric=False),
    Column("attributed_cost_usd", "Usage", _money),
    Column("idle_cost_usd", "Idle share", _money),
    Column("total_cost_usd", "Total", _money),
)
BUDGET_COLUMNS = (
    Column("tenant", "Tenant", _text, numeric=False),
    Column("weekly_budget_usd", "Weekly budget", _money),
    Column("week_actual_usd", "Actual", _money),
    Column("week_used_pct", "Used", _pct),
    Column("month_to_date_usd", "Month to date", _money),
    Column("forecast_usd", "Month-end forecast", _money),
    Column("month_budget_usd", "Month budget", _money),
    Column("forecast_pct_of_budget", "Forecast / budget", _pct),
    Column("status", "Status", _text, numeric=False),
)
ANOMALY_COLUMNS = (
    Column("day", "Day", _day, numeric=False),
    Column("usage_cost_usd", "Usage", _money),
    Column("baseline_days", "Baseline days", _count),
    Column("baseline_median_usd", "Trailing median", _money),
    Column("robust_z", "Robust z", _z),
    Column("flagged", "Stands out", lambda v: "yes" if v else "", numeric=False),
)


def _key_columns(*pairs: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(key, heading, _text, numeric=False) for key, heading in pairs)


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    columns: Sequence[Column]


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
            _tables(f.by_tenant, _key_columns(("tenant", "Tenant")) + USAGE_COLUMNS),
            drawn("tenants"),
        ),
        Section(
            "models",
            "Spend by model and version",
            quiet,
            _tables(
                f.by_model_version,
                _key_columns(("model_name", "Model"), ("model_version", "Version")) + USAGE_COLUMNS,
            ),
            drawn("models"),
        ),
        Section(
            "endpoints",
            "Spend by endpoint",
            quiet,
            _tables(f.by_endpoint, _key_columns(("endpoint", "Endpoint")) + USAGE_COLUMNS),
            drawn("endpoints"),
        ),
        Section(
            "per-1k",
            "Cost per 1,000 predictions",
            [
                "Usage per 1k is the cost monitor's cost_per_1k_predictions_usd: compute time and "
                "request fees only. All-in adds each model's share of idle capacity."
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
            f"({_signed_pct(change.pct)})."
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


def _idle_text(f: WeeklyFigures) -> list[str]:
    idle = f.idle
    return [
        f"Provisioned capacity cost {usd(idle.capacity_cost_usd)} this week; requests used "
        f"{usd(idle.attributed_cost_usd)} of it (usage-priced). Idle capacity came to "
        f"{usd(idle.idle_usd)} ({_pct(idle.idle_pct)} of capacity): "
        f"{usd(idle.shared_idle_usd)} shared across the tenants that used each day, in "
        f"proportion to their usage cost, and {usd(idle.unallocated_idle_usd)} unallocated "
        "(days without any traffic).",
    ]


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
    "Source: the predictions table, aggregated per UTC day in SQL "
    "(storage.aggregates.daily_compute_totals).",
    "Usage cost (attributed): compute seconds x the model's price per CPU or GPU second (by "
    "resource class) + a fee per request, from pricing in the configuration; the same function "
    "(monitors.cost.compute_costs) prices the cost monitor.",
    "Idle cost: each UTC day's provisioned capacity (replicas x hourly rate x 24 h) minus that "
    "day's usage cost, shared across the day's usage in proportion to usage cost (as OpenCost "
    "does). Capacity is billed from the day of the store's first prediction; on billed days "
    "without traffic it stays unallocated. Total spend = usage + shared idle + unallocated idle.",
    "Week over week compares with the ISO week before; movers are the tenant, endpoint and model "
    "combinations whose total spend changed most.",
]


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


# ---------------------------------------------------------------------------- charts

PALETTE = {"usage": "#2f6db5", "shared": "#9bbbe0", "unallocated": "#d9d9d9", "alert": "#c8372d"}


def render_charts(figures: WeeklyFigures) -> dict[str, bytes]:
    """PNG charts keyed by name; charts without anything to draw are left out."""
    charts: dict[str, bytes] = {}
    if figures.spend.current > 0 or figures.has_traffic:
        charts["daily"] = _png(_daily_chart(figures))
    if float(figures.history["total_cost_usd"].sum()) > 0:
        charts["trend"] = _png(_trend_chart(figures))
    if figures.has_traffic:
        charts["tenants"] = _png(_compare_chart(figures.by_tenant, ["tenant"], "Spend by tenant"))
        models = figures.by_model_version
        charts["models"] = _png(
            _compare_chart(models, ["model_name", "model_version"], "Spend by model and version")
        )
        endpoints = figures.by_endpoint
        charts["endpoints"] = _png(_compare_chart(endpoints, ["endpoint"], "Spend by endpoint"))
    budgeted = figures.budgets.dropna(subset=["weekly_budget_usd"])
    if not budgeted.empty:
        charts["budgets"] = _png(_budget_chart(budgeted))
    return charts


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _figure(height: float = 3.2) -> Figure:
    # matplotlib loads only when a report is drawn, not whenever the CLI starts.
    from matplotlib.figure import Figure

    return Figure(figsize=(9.0, height), layout="constrained")


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
    figure = _figure()
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
    figure = _figure()
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

    return DateFormatter("%d %b")


def _compare_chart(frame: pd.DataFrame, keys: Sequence[str], title: str) -> Figure:
    shown = frame.head(12).iloc[::-1]
    labels = [" ".join(str(row[k]) for k in keys) for _, row in shown.iterrows()]
    figure = _figure(max(2.2, 0.9 + 0.45 * len(labels)))
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
    figure = _figure(max(2.6, 1.2 + 0.5 * len(budgets)))
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


# ---------------------------------------------------------------------------- HTML

STYLE = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}.meta{color:#666;margin:0 0 16px}
.summary{background:#eef4fb;border-left:4px solid #2f6db5;padding:10px 18px;margin:16px 0}
.summary li{margin:4px 0}.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.kpi{flex:1 1 150px;border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px}
.kpi b{display:block;font-size:21px}.kpi span{color:#666;font-size:13px}
table{border-collapse:collapse;width:100%;margin:10px 0;font-size:13.5px}
th,td{padding:5px 8px;border-bottom:1px solid #eee;text-align:left}
th{background:#fafafa;font-weight:600}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;display:block;margin:10px 0}
tr.flagged td{background:#fdecea}p{margin:8px 0}
"""

# Marks the body once every image has loaded, so a headless browser can check the report.
IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.dataset.imagesLoaded = ok.length + "/" + images.length;
});
"""


def render_html(figures: WeeklyFigures, charts: dict[str, bytes], generated: datetime) -> str:
    """A self-contained page: inline style, charts as base64 PNG data URIs."""
    f = figures
    week = f.week
    title = f"FinOps report {week.label}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{span(week)} (UTC) · generated {generated:%Y-%m-%d %H:%M} UTC</p>',
        '<section id="summary"><h2>Summary</h2>',
        _kpis(f),
        '<ul class="summary">',
        *[f"<li>{_e(line)}</li>" for line in f.summary],
        "</ul></section>",
    ]
    for section in sections(f, charts):
        parts.append(f'<section id="{section.anchor}"><h2>{_e(section.title)}</h2>')
        parts.extend(f"<p>{_e(p)}</p>" for p in section.paragraphs)
        for name in section.charts:
            parts.append(_image(name, charts[name]))
        parts.extend(_html_table(table) for table in section.tables)
        parts.append("</section>")
    parts.append(f"</main><script>{IMAGE_CHECK}</script></body></html>")
    return "\n".join(parts) + "\n"


def _kpis(f: WeeklyFigures) -> str:
    per_1k = f.usage.current / f.predictions.current * 1000 if f.predictions.current else None
    cards = [
        (usd(f.spend.current), f"total spend ({_signed_pct(f.spend.pct)} w/w)"),
        (usd(f.usage.current), "usage cost"),
        (usd(f.idle.idle_usd), f"idle ({_pct(f.idle.idle_pct)} of capacity)"),
        (f"{int(f.predictions.current):,}", "predictions"),
        (_fine_money(per_1k), "usage per 1k predictions"),
    ]
    inner = "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
    return f'<div class="kpis">{inner}</div>'


def _image(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="chart-{name}" alt="{_e(name)} chart" src="data:image/png;base64,{data}">'


def _html_table(table: Table) -> str:
    head = "".join(
        f'<th class="{"num" if c.numeric else ""}">{_e(c.heading)}</th>' for c in table.columns
    )
    rows = []
    for record in table.frame.to_dict("records"):
        cells = "".join(
            f'<td class="{"num" if c.numeric else ""}">{_e(c.show(record[c.key]))}</td>'
            for c in table.columns
        )
        flagged = ' class="flagged"' if record.get("flagged") else ""
        rows.append(f"<tr{flagged}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------------------- Markdown


def render_markdown(figures: WeeklyFigures) -> str:
    """The same sections as the HTML, tables as GitHub pipe tables, without the charts."""
    f = figures
    lines = [
        f"# FinOps report {f.week.label}",
        "",
        f"{span(f.week)} (UTC). Charts are in {report_stem(f.week)}.html.",
        "",
        "## Summary",
        "",
        *[f"- {line}" for line in f.summary],
    ]
    for section in sections(f, {}):
        lines.extend(["", f"## {section.title}"])
        for paragraph in section.paragraphs:
            lines.extend(["", paragraph])
        for table in section.tables:
            lines.extend(["", *_markdown_table(table)])
    return "\n".join(lines).rstrip() + "\n"


def _markdown_table(table: Table) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c.heading) for c in table.columns) + " |"
    rule = "|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|"
    body = [
        "| " + " | ".join(cell(c.show(record[c.key])) for c in table.columns) + " |"
        for record in table.frame.to_dict("records")
    ]
    return [header, rule, *body]


# ---------------------------------------------------------------------------- CLI


def finops(
    week: WeekOption = None,
    out_dir: OutDirOption = DEFAULT_OUT_DIR,
    database_url: DatabaseUrlOption = None,
    config: Path | None = None,
) -> None:
    """Write the weekly FinOps report (HTML with charts, Markdown, CSV) for an ISO week."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress as RichProgress
    from rich.progress import SpinnerColumn, TextColumn
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from core.config import load_settings
    from storage.engine import create_store_engine

    console = Console(stderr=True)
    now = datetime.now(UTC)
    try:
        target = IsoWeek.parse(week) if week is not None else IsoWeek.last_full(now)
        require_week_over(target, now)
    except (MalformedWeekError, WeekNotOverError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    if config is not None:
        overrides["config_file"] = config
    settings = load_settings(**overrides)
    url = settings.resolved_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
        engine = create_store_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        console.print(
            f"[red]error:[/red] invalid database URL: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2) from exc
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    try:
        with RichProgress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"FinOps report {target.label}", total=None)

            def step(what: str) -> None:
                bar.update(task, description=f"FinOps report {target.label}: {what}")

            paths = write_weekly_report(engine, settings, target, out_dir, now=now, progress=step)
    except DBAPIError as exc:
        missing = "no such table" in str(exc.orig) or "UndefinedTable" in type(exc.orig).__name__
        hint = " (is it migrated? run `servewatch db upgrade`)" if missing else ""
        console.print(
            f"[red]error:[/red] {escape(f'cannot read the store at {shown}: {exc.orig}{hint}')}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    console.print(f"wrote the FinOps report for {target.label} to {out_dir}", soft_wrap=True)
    for path in paths:
        typer.echo(str(path))
