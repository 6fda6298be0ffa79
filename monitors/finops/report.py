"""Writing the weekly FinOps report: figures from the store, files written atomically, and
`due_week` for the scheduler and the command.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.config import AppConfig, Settings
from core.files import write_atomically
from core.timeutil import IsoWeek, midnight, to_utc
from monitors.aggregate_source import CostAggregates, aggregate_source
from monitors.finops.charts import render_charts
from monitors.finops.figures import WeeklyFigures, budgets_of, data_range, weekly_figures
from monitors.finops.html_page import render_html
from monitors.finops.markdown_page import render_markdown
from monitors.finops.sections import report_stem
from monitors.finops.tables import csv_tables
from storage.engine import Engine

Progress = Callable[[str], None]


class WeekNotOverError(ValueError):
    """The week has not ended yet: its figures would be partial."""


def load_figures(
    engine: Engine, config: AppConfig, week: IsoWeek, source: CostAggregates | None = None
) -> WeeklyFigures:
    """The week's figures from the store's daily aggregates and the configured prices.

    The aggregates come from `source` (default: `monitors.source`, the per-minute rollups
    unless set to raw rows): whole days and hours, so the rollups answer them alone.
    """
    read = source or aggregate_source(engine, config.monitors.source)
    start, end = data_range(week)
    totals = read.daily_compute_totals(midnight(start), midnight(end))
    first = read.first_prediction_day(midnight(end))  # capacity is billed from then
    hourly = read.hourly_busy_ms(midnight(week.start), midnight(week.end))
    return weekly_figures(totals, week, config.pricing, budgets_of(config), first, hourly)


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
    """Write the week's CSV tables, Markdown and HTML into `out_dir`; returns their paths.

    `now` (default: the wall clock, read once) decides whether the week is over and stamps the page.
    """
    moment = to_utc(now or datetime.now(UTC))
    target = IsoWeek.parse(week) if isinstance(week, str) else week
    require_week_over(target, moment)
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
    page = render_html(figures, charts, moment)
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
