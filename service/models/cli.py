"""`servewatch models ...`: build the business models and list the registered versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from service.models.build import BuildOutcome
    from service.models.recipes import ModelRecipe
    from service.models.registry import RegisteredModel

app = typer.Typer(
    help="Build, register and list the business models (BentoML model store).",
    no_args_is_help=True,
)
console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="Store to mirror versions into; default SERVEWATCH_DATABASE_URL."
    ),
]


@app.command()
def build(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model to build (repeatable); default: all."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when this version is registered.")
    ] = False,
    database_url: DatabaseUrl = None,
    data_seed: Annotated[
        int | None,
        typer.Option(
            "--data-seed",
            help="Train on another draw of the generated data: a retrained candidate version.",
        ),
    ] = None,
) -> None:
    """Train, export to ONNX, check parity and register; unchanged inputs are up to date."""
    from core.config import load_settings, use_bentoml_home

    settings = load_settings()
    home = use_bentoml_home(settings)
    from service.models.metadata import MetadataError
    from service.models.parity import ParityError
    from service.models.recipes import RECIPES, recipe, reseeded

    try:
        recipes = [recipe(name) for name in (model or RECIPES)]
        if data_seed is not None:
            recipes = [reseeded(r, data_seed) for r in recipes]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    try:
        outcomes = _build_with_progress(recipes, force=force, home=home)
    except (ParityError, MetadataError) as exc:
        _say(str(exc), prefix="[red]build failed:[/red] ")
        raise typer.Exit(1) from exc
    for outcome in outcomes:
        _print_outcome(outcome)
    _say(f"model store: {home}")
    _mirror(database_url or settings.resolved_database_url, home)


@app.command("list")
def list_models_command(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this model.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON on stdout.")
    ] = False,
) -> None:
    """Registered versions with their metadata, newest first per model."""
    from core.config import load_settings, use_bentoml_home

    home = use_bentoml_home(load_settings())
    from service.models.registry import list_models

    models = list_models(name, home=home)
    if as_json:
        typer.echo(json.dumps([model_summary(m, latest) for m, latest in _flag_latest(models)]))
        return
    if not models:
        _say(f"no models registered in {home}: run `servewatch models build`")
        return
    out = Console()
    if not out.is_terminal:  # piped: no width to adapt to, so don't squeeze the columns
        out = Console(width=160)
    out.print(_table(models))


@app.command()
def sync(database_url: DatabaseUrl = None) -> None:
    """Mirror the registered versions into the store's model_versions table."""
    from core.config import load_settings, use_bentoml_home

    settings = load_settings()
    home = use_bentoml_home(settings)
    if not _mirror(database_url or settings.resolved_database_url, home):
        raise typer.Exit(1)


def model_summary(model: RegisteredModel, latest: bool) -> dict[str, Any]:
    """A registered version as JSON-ready data."""
    return {
        "name": model.name,
        "version": model.version,
        "latest": latest,
        "created_at": model.created_at.isoformat(),
        "path": str(model.path),
        "labels": model.labels,
        "metadata": model.metadata,
    }


def _build_with_progress(
    recipes: list[ModelRecipe], *, force: bool, home: Path
) -> list[BuildOutcome]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from service.models.build import STEPS, build_model

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    outcomes = []
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {r.name: progress.add_task(f"{r.name}: waiting", total=len(STEPS)) for r in recipes}

        def on_step(name: str, step: str) -> None:
            progress.update(tasks[name], description=f"{name}: {step}", completed=STEPS.index(step))

        for model_recipe in recipes:
            outcome = build_model(model_recipe, force=force, home=home, on_step=on_step)
            state = "built" if outcome.status == "built" else "up to date"
            progress.update(
                tasks[model_recipe.name],
                description=f"{model_recipe.name}: {state}",
                completed=len(STEPS),
            )
            outcomes.append(outcome)
    return outcomes


def _print_outcome(outcome: BuildOutcome) -> None:
    if outcome.status == "up_to_date" and outcome.latest:
        _say(f"{outcome.name} {outcome.version}: up to date (use --force to rebuild)")
        return
    if outcome.status == "up_to_date":
        _say(
            f"{outcome.name} {outcome.version}: registered already, but a newer version is "
            "`latest` (use --force to rebuild it as the latest)"
        )
        return
    evaluation = outcome.model.metadata["evaluation"]
    parity = outcome.model.metadata.get("parity", {})
    _say(
        f"{outcome.name} {outcome.version}: built in {outcome.seconds:.1f}s, "
        f"accuracy {evaluation['accuracy']:.3f}, macro-F1 {evaluation['macro_f1']:.3f}, "
        f"ECE {evaluation['calibration']['ece']:.3f}, "
        f"parity max |Δp| {parity.get('max_abs_diff', float('nan')):.1e}"
    )


def _mirror(url: str, home: Path) -> bool:
    """Mirror versions into the store when it is migrated; False (and why) when not done."""
    from service.models.mirror import sync_model_versions
    from storage.engine import create_store_engine, is_sqlite, shown_url, sqlite_file_exists
    from storage.errors import StoreError
    from storage.model_versions import model_versions_ready

    shown = shown_url(url)
    hint = (
        f"the store at {shown} is not migrated: run `servewatch db upgrade`, then "
        "`servewatch models sync` to mirror model versions into it"
    )
    if is_sqlite(url) and not sqlite_file_exists(url):
        _say(hint)
        return False
    engine = create_store_engine(url)
    try:
        if not model_versions_ready(engine):
            _say(hint)
            return False
        count = sync_model_versions(engine, home=home)
    except StoreError as exc:
        _say(f"cannot mirror into {shown}: {exc}", prefix="[yellow]warning:[/yellow] ")
        return False
    finally:
        engine.dispose()
    _say(f"mirrored {count} model versions into model_versions at {shown}")
    return True


def _say(text: str, prefix: str = "") -> None:
    """A message on stderr: never wrapped (paths, URLs), never read as markup."""
    from rich.markup import escape

    console.print(prefix + escape(text), highlight=False, soft_wrap=True)


def _flag_latest(models: list[RegisteredModel]) -> list[tuple[RegisteredModel, bool]]:
    seen: set[str] = set()
    flagged = []
    for model in models:
        flagged.append((model, model.name not in seen))
        seen.add(model.name)
    return flagged


def _table(models: list[RegisteredModel]) -> Any:
    from rich.table import Table

    table = Table(title="Registered models (newest first per model)")
    table.add_column("model", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("latest", justify="center")
    table.add_column("created (UTC)")
    table.add_column("snapshot", no_wrap=True)
    table.add_column("preprocessing")
    for header in ("accuracy", "macro F1", "ECE", "Brier"):
        table.add_column(header, justify="right")
    for model, latest in _flag_latest(models):
        m = model.metadata
        evaluation = m["evaluation"]
        table.add_row(
            model.name,
            model.version,
            "✓" if latest else "",
            model.created_at.strftime("%Y-%m-%d %H:%M"),
            m["snapshot_id"][:12],
            m["preprocessing_version"],
            f"{evaluation['accuracy']:.3f}",
            f"{evaluation['macro_f1']:.3f}",
            f"{evaluation['calibration']['ece']:.3f}",
            f"{evaluation['calibration']['brier']:.3f}",
        )
    return table
