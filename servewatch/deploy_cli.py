"""`servewatch deploy prometheus`: prometheus.yml and file_sd targets for N service replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from alerts.prometheus_config import (
    DEFAULT_RULE_FILES,
    PrometheusSpec,
    PrometheusSpecError,
    render,
    write,
)

app = typer.Typer(help="Deployment configuration for many replicas.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Deployment configuration for many replicas."""


@app.command()
def prometheus(
    replicas: Annotated[
        list[str], typer.Option("--replica", help="A service replica's HOST:PORT (repeat)")
    ],
    out_dir: Annotated[Path, typer.Option(help="Where prometheus.yml and targets/ go")] = Path(
        "prometheus"
    ),
    monitors: Annotated[
        list[str] | None,
        typer.Option("--monitors", help="A monitor scheduler's HOST:PORT (repeat: an HA pair)"),
    ] = None,
    alertmanagers: Annotated[
        list[str] | None, typer.Option("--alertmanager", help="An Alertmanager's HOST:PORT")
    ] = None,
    rule_files: Annotated[
        list[str] | None, typer.Option("--rule-files", help="Rule file globs Prometheus loads")
    ] = None,
    remote_write: Annotated[
        list[str] | None,
        typer.Option(
            "--remote-write", help="A receiver's URL, e.g. http://central:9090/api/v1/write"
        ),
    ] = None,
    no_rules: Annotated[
        bool, typer.Option("--no-rules", help="Load no rules (a central Prometheus runs them)")
    ] = False,
    scrape_interval: Annotated[str, typer.Option(help="Scrape and evaluation interval")] = "15s",
) -> None:
    """Write prometheus.yml (file_sd_configs) and targets/*.json; re-run it to change replicas:
    Prometheus picks up the new targets files without a restart."""
    spec = PrometheusSpec(
        replicas=tuple(replicas),
        monitors=tuple(monitors or ()),
        alertmanagers=tuple(alertmanagers or ()),
        rule_files=() if no_rules else tuple(rule_files or DEFAULT_RULE_FILES),
        remote_write=tuple(remote_write or ()),
        scrape_interval=scrape_interval,
        evaluation_interval=scrape_interval,
    )
    try:
        files = render(spec)
    except PrometheusSpecError as exc:
        console.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from exc
    for path in write(out_dir, files):
        console.print(f"wrote {path}", highlight=False, markup=False)
