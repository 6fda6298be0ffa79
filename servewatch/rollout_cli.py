"""`servewatch rollout start | promote | abort | list` and `servewatch rollback`."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.config import Settings
from core.files import write_atomically
from core.timeutil import iso_utc
from servewatch.rollout import Scope, parse_steps, pick_rollout, plan_rollout, roll_back
from servewatch.store_options import ConfigOption, DatabaseUrl, settings_for, store_engine
from storage.engine import Engine
from storage.rollouts import (
    Rollout,
    RolloutError,
    abort_rollout,
    list_rollouts,
    promote_rollout,
    start_rollout,
)

app = typer.Typer(
    help="Canary rollouts: a candidate version takes a growing share of its baseline's traffic.",
    no_args_is_help=True,
)

IdOption = Annotated[int | None, typer.Option("--id", help="the rollout (default: the only one)")]
ActorOption = Annotated[str | None, typer.Option(help="who acts (default: the user)")]


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    """The store's engine; a refused rollout change ends the command with its reason."""
    with store_engine(settings) as engine:
        try:
            yield engine
        except RolloutError as exc:
            Console(stderr=True).print(f"[red]refused:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc


def _registry_resolver(home: Path) -> Any:
    from service.models.registry import get_model

    return lambda name, version: get_model(name, version, home=home).version


def _show(rollouts: list[Rollout], title: str) -> None:
    table = Table("id", "candidate", "baseline", "endpoints", "weight %", "steps", title=title)
    for column in ("scope", "mode", "state", "updated", "by"):
        table.add_column(column)
    for r in rollouts:
        scope = ", ".join(f"{k}={v}" for k, v in (("tenant", r.tenant), ("region", r.region)) if v)
        steps = ",".join(f"{s:g}" for s in r.steps)
        table.add_row(
            str(r.id), r.candidate, r.baseline, "\n".join(r.endpoints), f"{r.weight:g}", steps,
            scope or "all", r.mode, r.state, iso_utc(r.updated_at), r.actor,
        )  # fmt: skip
    Console().print(table)


@app.command()
def start(
    candidate: Annotated[str, typer.Option(help="MODEL:VERSION (`latest` is resolved now)")],
    steps: Annotated[str, typer.Option(help="percent of traffic per step")] = "5,25,50,100",
    tenant: Annotated[str | None, typer.Option(help="only this tenant's requests")] = None,
    region: Annotated[str | None, typer.Option(help="only this region's requests")] = None,
    sticky: Annotated[bool, typer.Option(help="keep each tenant on one side")] = False,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
) -> None:
    """Send the first step's share of the baseline's traffic to CANDIDATE."""
    settings = settings_for(config, database_url)
    with _engine(settings) as engine:
        plan = plan_rollout(
            settings.config,
            candidate,
            parse_steps(steps),
            _registry_resolver(settings.bentoml_home),
            Scope(tenant=tenant, region=region, mode="sticky" if sticky else "hash"),
        )
        rollout = start_rollout(engine, plan, actor=actor or getpass.getuser(), now=_now())
    _show([rollout], "rollout started (workers apply it within seconds)")


@app.command()
def promote(
    rollout_id: IdOption = None, database_url: DatabaseUrl = None, actor: ActorOption = None
) -> None:
    """Move the active rollout to its next step (the last step promotes it at 100 %)."""
    with _engine(settings_for(None, database_url)) as engine:
        current = pick_rollout(engine, rollout_id)
        rollout = promote_rollout(engine, current.id, actor=actor or getpass.getuser(), now=_now())
    _show([rollout], "rollout promoted" if rollout.state == "promoted" else "rollout stepped")


@app.command()
def abort(
    rollout_id: IdOption = None,
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit log)")] = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
) -> None:
    """End the active rollout: every request goes back to the baseline within seconds."""
    with _engine(settings_for(None, database_url)) as engine:
        current = pick_rollout(engine, rollout_id)
        who = actor or getpass.getuser()
        rollout = abort_rollout(engine, current.id, actor=who, now=_now(), reason=reason)
    _show([rollout], "rollout aborted")


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 20,
    database_url: DatabaseUrl = None,
) -> None:
    """Rollouts, newest first."""
    with _engine(settings_for(None, database_url)) as engine:
        rollouts = list_rollouts(engine, limit=limit)
    _show(rollouts, "rollouts")


def rollback(
    config_out: Annotated[
        Path | None,
        typer.Option(help="where the parent release's configuration goes (release rollback)"),
    ] = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
) -> None:
    """Abort the active rollout, else undo the promoted one, else restore the parent release."""
    with _engine(settings_for(None, database_url)) as engine:
        done = roll_back(
            engine,
            actor=actor or getpass.getuser(),
            now=_now(),
            release_config_out=partial(_write_config, config_out),
        )
    if done.rollouts:
        _show(done.rollouts, "rolled back: the baseline serves again within seconds")
        return
    assert done.release is not None  # roll_back restores a release when it ends no rollout
    Console().print(
        f"release {done.from_release} rolled back to release {done.release.id}: "
        f"its configuration is in {config_out}; restart the service on it",
        highlight=False,
    )


def _write_config(path: Path | None, text: str) -> None:
    if path is None:
        raise RolloutError("no rollout in force: pass --config-out to restore the parent release")
    write_atomically(path, text)


def _now() -> datetime:
    return datetime.now(UTC)
