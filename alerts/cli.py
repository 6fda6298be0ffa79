"""`servewatch alerts build`: render the spec into rule files, promtool tests and Alertmanager."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from alerts.spec import SPEC_FILE

ALERTS_DIR = Path(__file__).parent
app = typer.Typer(help="Prometheus rules and Alertmanager configuration.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Prometheus rules and Alertmanager configuration."""


@app.command()
def build(
    out_dir: Annotated[Path, typer.Option(help="Where generated/ and alertmanager.yml go")] = (
        ALERTS_DIR
    ),
    spec_file: Annotated[Path, typer.Option("--spec", help="The alerting spec")] = SPEC_FILE,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="App config for the staleness limits (default: the spec's)"),
    ] = None,
    pager_url: Annotated[str | None, typer.Option(help="Webhook of the pager receiver")] = None,
    ticket_url: Annotated[str | None, typer.Option(help="Webhook of the ticket receiver")] = None,
    runbook_url: Annotated[str | None, typer.Option(help="Base URL of docs/runbooks.md")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is out of date")
    ] = False,
) -> None:
    """Write alerts/generated/*.yaml and alerts/alertmanager.yml from the spec."""
    from alerts.render import render
    from alerts.spec import SpecError, app_config_path, load_spec
    from core.config import ConfigError, load_app_config
    from core.generate import sync_generated

    try:
        spec = load_spec(spec_file)
        config = config_file or app_config_path(spec, spec_file)
        schedules = load_app_config(config).monitors.schedules
    except (SpecError, ConfigError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    files = render(
        spec, schedules, pager_url=pager_url, ticket_url=ticket_url, runbook_url=runbook_url
    )
    code, lines = sync_generated(out_dir, files, "generated", "*.yaml", check=check)
    for line in lines:
        console.print(line)
    if code:
        raise typer.Exit(code)
