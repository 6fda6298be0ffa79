"""`servewatch report finops`: the command's options, light to import (the report is not)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


def finops(
    week: WeekOption = None,
    out_dir: OutDirOption = DEFAULT_OUT_DIR,
    database_url: DatabaseUrlOption = None,
    config: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="YAML config (prices, budgets)."),
    ] = None,
) -> None:
    """Write the weekly FinOps report (HTML with charts, Markdown, CSV) for an ISO week."""
    from monitors import finops_report

    finops_report.finops(week=week, out_dir=out_dir, database_url=database_url, config=config)
