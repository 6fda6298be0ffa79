"""`servewatch report finops`: light to import (the report's modules load when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_OUT_DIR = Path("var/reports")

WeekOption = Annotated[
    str | None,
    typer.Option("--week", help="ISO week, e.g. 2026-W47; default: the last full week."),
]
OutDirOption = Annotated[
    Path, typer.Option("--out-dir", help="Folder for the HTML, Markdown and CSV files.")
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default SERVEWATCH_DATABASE_URL or var/"),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="YAML config (prices, budgets)."),
]


def finops(
    week: WeekOption = None,
    out_dir: OutDirOption = DEFAULT_OUT_DIR,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the weekly FinOps report (HTML with charts, Markdown, CSV) for an ISO week."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress as RichProgress
    from rich.progress import SpinnerColumn, TextColumn

    from core.config import load_settings
    from core.timeutil import IsoWeek, MalformedWeekError
    from monitors.finops.report import WeekNotOverError, require_week_over, write_weekly_report
    from storage.engine import create_store_engine, missing_table, shown_url
    from storage.errors import BadUrlError, DatabaseError

    console = Console(stderr=True)
    now = datetime.now(UTC)  # the command is the edge: the report below takes `now` as given
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
        shown = shown_url(url)
        engine = create_store_engine(url)
    except BadUrlError as exc:
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
    except DatabaseError as exc:
        hint = " (is it migrated? run `servewatch db upgrade`)" if missing_table(exc) else ""
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
