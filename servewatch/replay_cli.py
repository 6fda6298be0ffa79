"""`servewatch replay`: light to import (the replay's modules load when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from servewatch.store_options import DatabaseUrl, settings_for

# Exit codes: 0 every gate held, 1 a gate failed, 2 the replay could not run.
GATE_FAILED, CANNOT_RUN = 1, 2

CandidateOption = Annotated[
    str, typer.Option("--candidate", help="The version to try, as MODEL:VERSION.")
]
SinceOption = Annotated[str, typer.Option("--since", help="Replay rows from this ISO 8601 time.")]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Replay rows before this ISO 8601 time; default now.")
]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant's rows.")]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="At most this many rows (oldest first).")
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Folder for replay.json and replay.html; default under reports."),
]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Items per model call.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="YAML config (replay.gates)."),
]


def replay(
    candidate: CandidateOption,
    since: SinceOption,
    until: UntilOption = None,
    tenant: TenantOption = None,
    limit: LimitOption = None,
    out: OutOption = None,
    batch_size: BatchOption = 32,
    database_url: DatabaseUrl = None,
    config: ConfigOption = None,
) -> None:
    """Re-score stored inputs with a candidate version and with the versions that answered them;
    exit 1 when a configured gate (replay.gates) fails."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.markup import escape

    from core.reports import path_part
    from core.timeutil import InvalidWindowError, parse_time
    from servewatch.replay import ReplayRequest, run_replay
    from servewatch.replay_report import write_report
    from service.models.registry import ModelNotFoundError
    from storage.engine import create_store_engine

    console = Console(stderr=True)

    def fail(message: str, exc: Exception | None = None) -> typer.Exit:
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        return typer.Exit(CANNOT_RUN)

    now = datetime.now(UTC)  # the command is the edge: the replay takes `now` as given
    name, _, version = candidate.partition(":")
    if not name or not version:
        raise fail(f"--candidate must be MODEL:VERSION, got {candidate!r}")
    try:
        start = parse_time(since)
        end = parse_time(until) if until is not None else now
    except InvalidWindowError as exc:
        raise fail(str(exc)) from exc
    if end <= start:
        raise fail("--until must be after --since")
    settings = settings_for(config, database_url)
    request = ReplayRequest(name, version, start, end, tenant, limit, batch_size)
    engine = create_store_engine(settings.resolved_database_url)
    try:
        outcome = run_replay(engine, settings, request, now)
    except ModelNotFoundError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    folder = out or settings.reports_dir / "replay" / path_part(name) / path_part(version)
    paths = write_report(outcome, folder)
    for gate in outcome.gates:
        mark = "[green]ok[/green]" if gate.passed else "[red]FAILED[/red]"
        value = "–" if gate.value is None else f"{gate.value:.4g}"
        console.print(f"{mark} {gate.gate}: {value} (limit {gate.limit:g}, {gate.n} items)")
    console.print(f"{outcome.replayed} items replayed; report: {paths['html']}", highlight=False)
    typer.echo(str(paths["json"]))
    if not outcome.passed:
        raise typer.Exit(GATE_FAILED)
