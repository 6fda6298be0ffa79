"""`servewatch release build | list | show | diff`."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.config import Settings, load_settings
from core.timeutil import iso_utc
from servewatch.release import (
    ReleaseError,
    build_bento,
    diff_releases,
    export_requirements,
    pin_routing,
    record_release,
    write_build_inputs,
)
from storage.engine import Engine, create_store_engine
from storage.releases import ReleaseRecord, get_release, list_releases

PROJECT_ROOT = Path(__file__).resolve().parents[1]

app = typer.Typer(help="Releases: pinned model versions packed into a Bento.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config (default SERVEWATCH_CONFIG_FILE)")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="default SERVEWATCH_DATABASE_URL or var/")
]


def _settings(config: Path | None, database_url: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if config is not None:
        overrides["config_file"] = config
    if database_url is not None:
        overrides["database_url"] = database_url
    return load_settings(**overrides)


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = create_store_engine(settings.resolved_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _registry_resolver(home: Path) -> Any:
    from service.models.registry import get_model

    return lambda name, version: get_model(name, version, home=home).version


@app.command()
def build(
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    bento: Annotated[bool, typer.Option(help="run `bentoml build` (off: inputs only)")] = True,
    actor: Annotated[str | None, typer.Option(help="who builds it (default: the user)")] = None,
) -> None:
    """Pin every route to a model version, build the Bento and record the release."""
    settings = _settings(config, database_url)
    console = Console()
    try:
        pinned = pin_routing(settings.config, _registry_resolver(settings.bentoml_home))
        bentofile = write_build_inputs(PROJECT_ROOT, pinned, export_requirements(PROJECT_ROOT))
        tag = build_bento(PROJECT_ROOT, bentofile, settings.bentoml_home) if bento else None
    except ReleaseError as exc:
        Console(stderr=True).print(f"[red]release refused:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    with _engine(settings) as engine:
        built = record_release(
            engine, pinned, bento_tag=tag, actor=actor or getpass.getuser(), now=datetime.now(UTC)
        )
    console.print(f"release {built.release_id} (parent {built.parent_id}): bento {tag or '-'}")
    console.print(f"models {', '.join(built.model_tags)}; config sha256 {built.config_digest}")


@app.command("list")
def list_command(database_url: DatabaseUrl = None) -> None:
    """The releases, newest first."""
    with _engine(_settings(None, database_url)) as engine:
        records = list_releases(engine)
    table = Table("id", "created", "by", "bento", "models", "parent", title="releases")
    for r in records:
        parent = "-" if r.parent_id is None else str(r.parent_id)
        models = "\n".join(r.model_tags)
        table.add_row(
            str(r.id), iso_utc(r.created_at), r.created_by, r.bento_tag or "-", models, parent
        )
    Console().print(table)


def _fetch(engine: Engine, release_id: int) -> ReleaseRecord:
    record = get_release(engine, release_id)
    if record is None:
        Console(stderr=True).print(f"[red]no release {release_id}[/red]")
        raise typer.Exit(1)
    return record


@app.command()
def show(release_id: int, database_url: DatabaseUrl = None) -> None:
    """One release: its Bento, digest, parent and the model version of every route."""
    with _engine(_settings(None, database_url)) as engine:
        r = _fetch(engine, release_id)
    console = Console()
    console.print(f"release {r.id} by {r.created_by} at {iso_utc(r.created_at)}")
    console.print(f"bento {r.bento_tag or '-'}; parent {r.parent_id or '-'}")
    console.print(f"config sha256 {r.config_digest}")
    table = Table("endpoint", "match", "model", "version", title="routes")
    for endpoint, route in r.config["routing"].items():
        d = route["default"]
        table.add_row(endpoint, "default", d["model"], d["version"])
        for rule in route["rules"]:
            match = ", ".join(f"{k}={rule[k]}" for k in ("tenant", "region") if rule.get(k))
            table.add_row(endpoint, match, rule["model"], rule["version"])
    console.print(table)


@app.command()
def diff(before: int, after: int, database_url: DatabaseUrl = None) -> None:
    """What changed from release BEFORE to release AFTER: models, routes, config keys."""
    with _engine(_settings(None, database_url)) as engine:
        changes = diff_releases(_fetch(engine, before), _fetch(engine, after))
    table = Table("area", "key", str(before), str(after), title=f"release {before} -> {after}")
    for c in changes:
        table.add_row(c.area, c.key, _cell(c.before), _cell(c.after))
    Console().print(table if changes else "no differences")


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
