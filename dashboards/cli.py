"""`servewatch dashboards build`: render the Grafana dashboards into dashboards/generated/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from alerts.spec import SPEC_FILE

DASHBOARDS_DIR = Path(__file__).parent
app = typer.Typer(help="Grafana dashboards.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Grafana dashboards."""


@app.command()
def build(
    out_dir: Annotated[Path, typer.Option(help="Where generated/*.json go")] = DASHBOARDS_DIR,
    spec_file: Annotated[Path, typer.Option("--spec", help="The alerting spec (SLOs)")] = (
        SPEC_FILE
    ),
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="App config for the thresholds (default: the spec's)"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is out of date")
    ] = False,
) -> None:
    """Write dashboards/generated/*.json (schemaVersion 39) from the definitions."""
    from alerts.spec import SpecError, app_config_path, load_spec
    from core.config import ConfigError, load_app_config
    from core.generate import sync_generated
    from dashboards.render import render

    try:
        spec = load_spec(spec_file)
        config = load_app_config(config_file or app_config_path(spec, spec_file))
    except (SpecError, ConfigError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    files = render(spec, config)
    code, lines = sync_generated(out_dir, files, "generated", "*.json", check=check)
    for line in lines:
        console.print(line)
    if code:
        raise typer.Exit(code)
