"""`servewatch db ...`: migrate, inspect and prune the store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Engine

    from storage.audit import Prune, PrunedRange
    from storage.retention import PrunePlan

app = typer.Typer(help="Migrate, inspect and prune the prediction store.", no_args_is_help=True)
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


@app.command("fold-rollups")
def fold_rollups(database_url: DatabaseUrl = None) -> None:
    """Fold the predictions not yet in the per-minute rollups (the scheduler does it each tick;
    this catches a large store up after `db upgrade`, in transactions of 50,000 rows)."""
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from storage.engine import create_store_engine
    from storage.rollups import fold_pending

    engine = create_store_engine(_url(database_url))
    try:
        started = time.perf_counter()
        rows = fold_pending(engine)
        typer.echo(f"folded {rows} predictions in {time.perf_counter() - started:.2f} s")
    except SQLAlchemyError as exc:
        console.print(
            f"[red]error:[/red] cannot fold the rollups ({type(exc).__name__}); "
            "is the store reachable and migrated (`servewatch db upgrade`)?"
        )
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@app.command()
def prune(
    keep_days: Annotated[
        float | None,
        typer.Option(help="days of predictions to keep (default: the config's retention)"),
    ] = None,
    monitor_results_keep_days: Annotated[
        float | None,
        typer.Option(help="days of monitor results to keep (default: the config's; none: all)"),
    ] = None,
    rollups_keep_days: Annotated[
        float | None,
        typer.Option(help="days of prediction rollups to keep (default: the config's; none: all)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="say what would go, delete nothing")] = False,
    batch_rows: Annotated[int, typer.Option(min=1, help="rows per transaction")] = 10_000,
    actor: Annotated[str | None, typer.Option(help="who prunes (default: the user)")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete predictions (whole audit blocks) and monitor results older than their retention,
    in batches; the audit log records the prune and keeps verifying."""
    import getpass
    import time
    from datetime import UTC, datetime

    from sqlalchemy.exc import SQLAlchemyError

    from core.config import ConfigError, load_settings
    from storage.engine import create_store_engine
    from storage.retention import RetentionError, cutoff, plan_prune
    from storage.retention import prune as run_prune

    try:
        retention = load_settings().config.retention
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    keep = keep_days if keep_days is not None else retention.predictions_days
    keep_results = (
        monitor_results_keep_days
        if monitor_results_keep_days is not None
        else retention.monitor_results_days
    )
    keep_rollups = rollups_keep_days if rollups_keep_days is not None else retention.rollups_days
    if keep is None and keep_results is None and keep_rollups is None:
        console.print(
            "[red]error:[/red] give --keep-days, --monitor-results-keep-days or "
            "--rollups-keep-days (or retention: in the config)"
        )
        raise typer.Exit(2)
    now = datetime.now(UTC)
    engine = create_store_engine(_url(database_url))
    try:
        started = time.perf_counter()
        if keep is not None or keep_results is not None:
            plan = plan_prune(
                engine, now=now, keep_days=keep, monitor_results_keep_days=keep_results
            )
            if dry_run:
                _print_prune(plan.prune, plan.predictions, plan.prune.monitor_results, None)
                _print_partitions([p.name for p in plan.partitions], dry_run=True)
            else:
                with _prune_progress(plan) as progress:
                    result = run_prune(
                        engine,
                        plan,
                        now=now,
                        actor=actor or getpass.getuser(),
                        batch_rows=batch_rows,
                        progress=progress,
                    )
                seconds = time.perf_counter() - started
                _print_prune(result.plan.prune, result.predictions, result.monitor_results, seconds)
                _print_partitions(result.dropped, dry_run=False)
        _prune_rollups(engine, cutoff(now, keep_rollups), dry_run)
    except RetentionError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        console.print(
            f"[red]error:[/red] cannot prune the store ({type(exc).__name__}); "
            "is it reachable and migrated (`servewatch db upgrade`)?"
        )
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _prune_rollups(engine: Engine, before: datetime | None, dry_run: bool) -> None:
    """Delete the rollups of minutes before `before` (None: kept); predictions stay as they are."""
    from storage.rollups import prune_rollups, rollups_before

    if before is None:
        typer.echo("prediction_rollups: kept (no retention)")
        return
    if dry_run:
        count = rollups_before(engine, before)
        typer.echo(f"prediction_rollups before {before.isoformat()}: would delete {count}")
        return
    typer.echo(
        f"prediction_rollups before {before.isoformat()}: deleted {prune_rollups(engine, before)}"
    )


@contextmanager
def _prune_progress(plan: PrunePlan) -> Iterator[Callable[[str, int], None]]:
    """A rich progress bar per table, advanced by each batch deleted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        tasks = {
            "predictions": bars.add_task("predictions", total=plan.predictions),
            "monitor_results": bars.add_task("monitor_results", total=plan.prune.monitor_results),
        }
        yield lambda table, rows: bars.advance(tasks[table], rows)


def _print_prune(prune: Prune, predictions: int, results: int, seconds: float | None) -> None:
    """The summary: rows deleted (or to delete) per table, the blocks, the time taken."""
    verb = "would delete" if seconds is None else "deleted"
    blocks = (
        "no audit block old enough"
        if prune.first_block is None
        else f"audit blocks {prune.first_block}..{prune.last_block}"
    )
    if prune.predictions_before is None:
        typer.echo("predictions: kept (no retention)")
    else:
        typer.echo(
            f"predictions before {prune.predictions_before}: {verb} {predictions} ({blocks})"
        )
    if prune.monitor_results_before is None:
        typer.echo("monitor_results: kept (no retention)")
    else:
        typer.echo(f"monitor_results before {prune.monitor_results_before}: {verb} {results}")
    if seconds is not None:
        typer.echo(f"took {seconds:.2f} s")


def _print_partitions(names: Sequence[str], dry_run: bool) -> None:
    """The partitions of `predictions` dropped whole (PostgreSQL), if any."""
    if names:
        verb = "would drop" if dry_run else "dropped"
        typer.echo(f"predictions partitions {verb} whole: {', '.join(names)}")


@app.command()
def partitions(
    days_ahead: Annotated[int, typer.Option(min=0, help="days to create beyond today")] = 3,
    database_url: DatabaseUrl = None,
) -> None:
    """Create today's and the next days' partitions of predictions (PostgreSQL; the scheduler
    does it hourly) and list them; SQLite keeps one table."""
    from datetime import UTC, datetime

    from sqlalchemy.exc import SQLAlchemyError

    from storage.engine import create_store_engine
    from storage.partitions import is_partitioned, maintain
    from storage.partitions import partitions as list_partitions

    engine = create_store_engine(_url(database_url))
    try:
        created = maintain(engine, datetime.now(UTC), days_ahead)
        with engine.connect() as connection:
            if not is_partitioned(connection):
                typer.echo("predictions is one table here (SQLite, or not migrated to 0009)")
                return
            found = list_partitions(connection)
    except SQLAlchemyError as exc:
        console.print(f"[red]error:[/red] cannot reach the store ({type(exc).__name__})")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    for partition in found:
        lower = "-" if partition.lower is None else partition.lower.isoformat()
        upper = "-" if partition.upper is None else partition.upper.isoformat()
        new = " (created)" if partition.name in created else ""
        typer.echo(f"{partition.name}: {lower} .. {upper}{new}")


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
        typer.echo(f"audit chain intact: {checked}{_pruned(result.pruned)}")
        return
    where = f"block {result.broken_block}" if result.broken_block is not None else "the chain"
    console.print(f"[red]audit chain broken at {where}:[/red] {result.reason} (checked {checked})")
    raise typer.Exit(1)


def _pruned(pruned: PrunedRange | None) -> str:
    """What `audit verify` says of the blocks whose predictions retention dropped."""
    if pruned is None:
        return ""
    return (
        f"; the predictions of blocks 1..{pruned.last_block} were pruned "
        f"({pruned.predictions} rows, {pruned.prunes} prune{'' if pruned.prunes == 1 else 's'})"
    )
