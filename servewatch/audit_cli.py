"""`servewatch audit stale`: model versions, routes, endpoints and tenants without traffic in
the last N days, and releases nothing references any more."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.config import AppConfig
from core.stale import ReleaseLink, StaleItem, StaleReport, stale_report
from core.timeutil import InvalidWindowError, iso_utc, parse_time
from servewatch.store_options import ConfigOption, DatabaseUrl, settings_for, store_engine
from storage.engine import Engine


def stale(
    days: Annotated[int, typer.Option(min=1, help="judge traffic over the last DAYS days")] = 30,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the report as JSON to this file")
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="ISO time to judge at (default: the current time)")
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List registered model versions, routes, endpoints and tenants without traffic in the
    last DAYS days, and releases that are not the newest, not its parent, and pin no version of
    a rollout in force."""
    from sqlalchemy.exc import SQLAlchemyError

    console = Console(stderr=True)
    try:
        at = parse_time(now) if now else datetime.now(UTC)
    except InvalidWindowError as exc:
        console.print(f"[red]error:[/red] --now: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    settings = settings_for(config, database_url)
    app_config = settings.config
    try:
        with store_engine(settings) as engine:
            report = _report(engine, app_config, at, days)
    except SQLAlchemyError as exc:
        console.print(
            f"[red]error:[/red] cannot read the store ({type(exc).__name__}); "
            "is it reachable and migrated (`servewatch db upgrade`)?"
        )
        raise typer.Exit(2) from exc
    _show(report)
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_json(), indent=2) + "\n")


def _report(engine: Engine, app_config: AppConfig, at: datetime, days: int) -> StaleReport:
    from storage.releases import list_releases
    from storage.rollouts import rollouts_in_force
    from storage.usage import last_seen, registered_versions

    releases = [ReleaseLink(r.id, r.parent_id, tuple(r.model_tags)) for r in list_releases(engine)]
    in_force = {tag for r in rollouts_in_force(engine) for tag in (r.candidate, r.baseline)}
    return stale_report(
        last_seen(engine),
        app_config,
        registered_versions(engine),
        releases,
        in_force,
        now=at,
        days=days,
    )


def _show(report: StaleReport) -> None:
    title = f"stale since {iso_utc(report.cutoff)} ({report.days} days)"
    if not report.items:
        typer.echo(f"nothing {title}")
        return
    table = Table("kind", "name", "last seen", "why", title=title)
    for item in report.items:
        table.add_row(item.kind, escape(item.name), _seen(item), escape(item.reason))
    Console(soft_wrap=True).print(table)


def _seen(item: StaleItem) -> str:
    """When the item last had traffic; releases are not judged by traffic."""
    if item.last_seen is not None:
        return iso_utc(item.last_seen)
    return "-" if item.kind == "release" else "never"
