"""`servewatch export parquet`: the prediction store's rows for engines beyond one database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitors.cli import CliError, DatabaseUrl, clear_errors, command_settings, err, open_store
from servewatch.store_options import ConfigOption

app = typer.Typer(help="Export the prediction store for other engines.", no_args_is_help=True)


@app.callback()
def _exports() -> None:
    """Export the prediction store for other engines."""  # keeps `export` a group


@app.command()
def parquet(
    start: Annotated[str, typer.Option("--from", help="Span start, ISO 8601 (UTC if no offset)")],
    end: Annotated[str, typer.Option("--to", help="Span end (exclusive), ISO 8601")],
    out: Annotated[Path, typer.Option("--out", help="Folder of the day partitions (created)")],
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read and written at a time")
    ] = 50_000,
    database_url: DatabaseUrl = None,
    config: ConfigOption = None,
) -> None:
    """Write the span's predictions as Parquet, one file per UTC day under
    OUT/day=YYYY-MM-DD/ (the same span again replaces its files; an overlapping one is refused)."""
    with clear_errors():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from core.timeutil import Window
        from storage.parquet_export import ExportOverlapError, count_rows, export_parquet

        span = Window.parse(start, end)
        settings = command_settings(config)
        engine = open_store(database_url or settings.resolved_database_url)
        columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task("exporting", total=count_rows(engine, span))
                files = export_parquet(
                    engine, span, out, chunk_rows, lambda n: progress.advance(task, n)
                )
        except ExportOverlapError as exc:
            raise CliError(str(exc), code=2) from exc
        finally:
            engine.dispose()
        for file in files:
            typer.echo(f"{file.path}\t{file.rows}")
        err.print(f"{sum(f.rows for f in files)} predictions in {len(files)} file(s) under {out}")
