"""`servewatch release build | list | show | diff`."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.config import AppConfig, Settings
from core.files import write_atomically
from core.timeutil import iso_utc
from servewatch.release import (
    ReleaseError,
    build_bento,
    diff_releases,
    export_requirements,
    model_tags,
    pin_routing,
    record_release,
    write_build_inputs,
)
from servewatch.release_check import CheckReport, ServiceTarget, check_models, check_service
from servewatch.store_options import ConfigOption, DatabaseUrl, settings_for, store_engine
from storage.engine import Engine
from storage.releases import ReleaseRecord, get_release, list_releases

PROJECT_ROOT = Path(__file__).resolve().parents[1]

app = typer.Typer(help="Releases: pinned model versions packed into a Bento.", no_args_is_help=True)


def _registry_resolver(home: Path) -> Any:
    from service.models.registry import get_model

    return lambda name, version: get_model(name, version, home=home).version


@app.command()
def build(
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    bento: Annotated[bool, typer.Option(help="run `bentoml build` (off: inputs only)")] = True,
    actor: Annotated[str | None, typer.Option(help="who builds it (default: the user)")] = None,
    skip_checks: Annotated[
        bool, typer.Option("--skip-checks", help="record it unchecked (said in its audit event)")
    ] = False,
) -> None:
    """Check the pinned model versions, build the Bento and record the release."""
    settings = settings_for(config, database_url)
    console = Console()
    try:
        pinned = pin_routing(settings.config, _registry_resolver(settings.bentoml_home))
    except ReleaseError as exc:
        Console(stderr=True).print(f"[red]release refused:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    checks = {"skipped": True} if skip_checks else _checked(settings, pinned).audit_details()
    try:
        bentofile = write_build_inputs(PROJECT_ROOT, pinned, export_requirements(PROJECT_ROOT))
        tag = build_bento(PROJECT_ROOT, bentofile, settings.bentoml_home) if bento else None
    except ReleaseError as exc:
        Console(stderr=True).print(f"[red]release refused:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    with store_engine(settings) as engine:
        built = record_release(
            engine,
            pinned,
            bento_tag=tag,
            actor=actor or getpass.getuser(),
            now=datetime.now(UTC),
            checks=checks,
        )
    console.print(f"release {built.release_id} (parent {built.parent_id}): bento {tag or '-'}")
    console.print(f"models {', '.join(built.model_tags)}; config sha256 {built.config_digest}")


def _checked(settings: Settings, pinned: AppConfig) -> CheckReport:
    """The checks of every pinned model version, shown; exit 1 when one fails."""
    tags = _split_tags(model_tags(pinned))
    return checked_or_exit(settings, tags, "release refused: its checks failed")


def checked_or_exit(settings: Settings, tags: list[tuple[str, str]], refusal: str) -> CheckReport:
    """The in-process checks of model versions before traffic, shown; `refusal` and exit 1
    when one fails."""
    report = check_models(settings, tags)
    show_report(report)
    if not report.passed:
        Console(stderr=True).print(f"[red]{refusal}[/red]")
        raise typer.Exit(1)
    return report


def _split_tags(tags: list[str]) -> list[tuple[str, str]]:
    return [(name, version) for name, _, version in (tag.partition(":") for tag in tags)]


@app.command()
def check(
    candidate: Annotated[
        str | None, typer.Option(help="MODEL:VERSION to check (VERSION may be `latest`)")
    ] = None,
    release: Annotated[int | None, typer.Option(help="check the models of release ID")] = None,
    url: Annotated[
        str | None, typer.Option(help="check the running service at URL over HTTP")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="SERVEWATCH_API_KEY", help="a tenant's key, for --url"),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
) -> None:
    """The checks before any traffic moves; exit 1 naming the failing cases when one fails.

    Without --candidate or --release: the model versions the configuration's routes name."""
    settings = settings_for(config, database_url)
    if candidate is not None and release is not None:
        raise typer.BadParameter("give --candidate or --release, not both")
    if candidate is not None and ":" not in candidate:
        raise typer.BadParameter("--candidate takes MODEL:VERSION", param_hint="--candidate")
    routed = settings.config
    if release is not None:
        with store_engine(settings) as engine:
            routed = AppConfig.model_validate(_fetch(engine, release).config)
    tags = _split_tags([candidate] if candidate else model_tags(routed))
    if url is None:
        report = check_models(settings, tags)
    else:
        if api_key is None:
            raise typer.BadParameter("--url needs --api-key (or SERVEWATCH_API_KEY)")
        target = ServiceTarget(url, api_key, routed, settings.bentoml_home)
        pinned = dict(tags) if candidate else None
        report = check_service(target, settings.config.release.golden, pinned)
    show_report(report)
    if json_out is not None:
        write_atomically(json_out, json.dumps(report.as_json(), indent=2))
    if not report.passed:
        raise typer.Exit(1)


def show_report(report: CheckReport) -> None:
    """The checks as a table, then each failing golden case: input, expected, got, why."""
    console = Console()
    table = Table("check", "subject", "result", title="checks before traffic")
    for c in report.checks:
        table.add_row(c.name, c.subject, "ok" if c.passed else f"[red]{c.problem}[/red]")
    console.print(table)
    for verdict in report.golden:
        for case in verdict.failing:
            got = (
                "no answer"
                if case.got_class is None
                else f"{case.got_class} ({case.got_confidence:.3f})"
            )
            why = f" - {case.problem}" if case.problem else ""
            console.print(
                f"FAIL {verdict.model}:{verdict.version} {case.case.excerpt!r}: "
                f"expected {case.case.expected_class} (built {case.case.built_class} "
                f"{case.case.confidence:.3f}), got {got}{why}",
                highlight=False,
                soft_wrap=True,
            )


@app.command("list")
def list_command(database_url: DatabaseUrl = None) -> None:
    """The releases, newest first."""
    with store_engine(settings_for(None, database_url)) as engine:
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
    with store_engine(settings_for(None, database_url)) as engine:
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
    with store_engine(settings_for(None, database_url)) as engine:
        changes = diff_releases(_fetch(engine, before), _fetch(engine, after))
    table = Table("area", "key", str(before), str(after), title=f"release {before} -> {after}")
    for c in changes:
        table.add_row(c.area, c.key, _cell(c.before), _cell(c.after))
    Console().print(table if changes else "no differences")


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
