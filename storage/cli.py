"""`servewatch db ...`: migrate and inspect the store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Migrate and inspect the prediction store.", no_args_is_help=True)
console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default SERVEWATCH_DATABASE_URL or var/"),
]


def _url(database_url: str | None) -> str:
    from core.config import load_settings

    return database_url or load_settings().resolved_database_url


@app.command()
def upgrade(database_url: DatabaseUrl = None) -> None:
    """Migrate the store to the newest schema (a no-op when it is there already)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from storage.migrate import head_revision
    from storage.migrate import upgrade as run_upgrade

    url = _url(database_url)
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        run_upgrade(url)
    except OperationalError as exc:
        console.print(f"[red]error:[/red] cannot reach the store at {shown}: {exc.orig}")
        raise typer.Exit(1) from exc
    console.print(f"store at {shown} is at revision {head_revision()}")


@app.command()
def current(database_url: DatabaseUrl = None) -> None:
    """Print the store's schema revision."""
    from storage.engine import create_store_engine
    from storage.migrate import current_revision

    engine = create_store_engine(_url(database_url))
    try:
        typer.echo(current_revision(engine) or "(empty store)")
    finally:
        engine.dispose()


audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.callback()
def _audit_group() -> None:
    """The tamper-evident audit log."""


@audit_app.command("verify")
def verify_audit(
    since: Annotated[
        str | None,
        typer.Option(help="ISO time: check the blocks sealed from then on (default: all)"),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute the audit chain; exit 1 naming the first block where a row was changed,
    deleted, inserted or reordered."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.timeutil import parse_time
    from storage.audit import verify
    from storage.engine import create_store_engine

    engine = create_store_engine(_url(database_url))
    try:
        result = verify(engine, since=parse_time(since) if since else None)
    except SQLAlchemyError as exc:
        console.print(
            f"[red]error:[/red] cannot read the audit log ({type(exc).__name__}); "
            "is the store reachable and migrated (`servewatch db upgrade`)?"
        )
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    checked = f"{result.blocks} blocks, {result.rows} rows"
    if result.ok:
        typer.echo(f"audit chain intact: {checked}")
        return
    where = f"block {result.broken_block}" if result.broken_block is not None else "the chain"
    console.print(f"[red]audit chain broken at {where}:[/red] {result.reason} (checked {checked})")
    raise typer.Exit(1)
