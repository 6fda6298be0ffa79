"""The `servewatch` command: one entry point whose subcommands live beside their packages."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from storage.cli import app as db_app

app = typer.Typer(
    help="servewatch: observability and drift monitoring for BentoML-served models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")


def main() -> None:
    """Run the CLI; configuration errors become one clear line and exit code 2."""
    from service.settings import ConfigError

    try:
        app()
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]configuration error:[/red] {exc}", highlight=False)
        sys.exit(2)
