"""`servewatch traffic` and `servewatch stack up`: demo load and the Docker-free local stack."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from service.traffic import DEMO_TENANTS, SCENARIOS, Scenario, plan_traffic, send_traffic

console = Console(stderr=True)
stack_app = typer.Typer(help="Run the whole stack locally, without Docker.", no_args_is_help=True)


def _scenario(spec: str) -> Scenario:
    """KIND[@START_S][:TENANT] e.g. `class_shift@60:acme`, `error_burst@30`."""
    head, _, tenant = spec.partition(":")
    kind, _, start = head.partition("@")
    if kind not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {kind!r}; choose from {', '.join(SCENARIOS)}")
    try:
        start_s = float(start) if start else 0.0
    except ValueError as exc:
        raise typer.BadParameter(f"scenario start must be seconds, got {start!r}") from exc
    return Scenario(kind, start_s=start_s, tenant=tenant or None)  # type: ignore[arg-type]


def traffic(
    url: Annotated[str, typer.Option(help="Base URL of the service.")] = "http://127.0.0.1:3000",
    rate: Annotated[float, typer.Option(min=0.01, help="Mean requests per second.")] = 10.0,
    duration: Annotated[float, typer.Option(min=0, help="Seconds to send for.")] = 60.0,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND[@START_S][:TENANT], repeatable; KIND is confidence_drop, class_shift, "
            "error_burst or latency_regression."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 32,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Send realistic load: several tenants, Poisson arrivals, drift and fault scenarios."""
    from service.models.risk_data import risk_features
    from service.models.ticket_corpus import ticket_text

    scenarios = [_scenario(s) for s in scenario or []]
    plan = plan_traffic(
        DEMO_TENANTS,
        rate,
        duration,
        ticket_text=ticket_text,
        risk_features=risk_features,
        scenarios=scenarios,
        seed=seed,
    )
    with Progress(
        TextColumn("traffic"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("send", total=duration)
        started = time.monotonic()

        def tick(_request: object, _status: int) -> None:
            progress.update(task, completed=min(duration, time.monotonic() - started))

        summary = asyncio.run(send_traffic(plan, url, concurrency=concurrency, on_response=tick))
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(summary.by_status.items()))
    console.print(
        f"sent {summary.sent}, answered {summary.answered} ({statuses}), "
        f"transport errors {summary.transport_errors}"
    )


@stack_app.command("up")
def up(
    config: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="YAML config.")
    ] = Path("examples/servewatch.yaml"),
    rate: Annotated[float, typer.Option(help="Demo traffic, requests per second.")] = 8.0,
    traffic_for: Annotated[float, typer.Option(help="Seconds of demo traffic (0: none).")] = 3600,
    run_for: Annotated[
        float | None, typer.Option("--for", help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="Demo pace: one-minute windows judged every 15 s, alerts held 30 s, and a drift "
            "injected into the traffic (--no-demo: the config's own schedules, no drift)."
        ),
    ] = True,
    drift_at: Annotated[float, typer.Option(help="Demo: seconds until the drift starts.")] = 60.0,
    drift_tenant: Annotated[str, typer.Option(help="Demo: the tenant whose traffic drifts.")] = (
        "globex"
    ),
) -> None:
    """Start store, models, service, monitors, alert sink, traffic, and Prometheus/Alertmanager if
    installed; show what they conclude while they run, and a summary when they stop."""
    from core.config import load_settings
    from servewatch.demo_profile import DemoDrift
    from servewatch.stack_session import run_stack
    from storage.migrate import upgrade

    settings = load_settings(**({"config_file": config} if config else {}))
    upgrade(settings.resolved_database_url)
    _ensure_models()
    drift = DemoDrift(at_s=drift_at, tenant=drift_tenant) if demo else None
    signal.signal(signal.SIGTERM, _interrupt)
    run_stack(settings, config, rate=rate, traffic_for=traffic_for, run_for=run_for, drift=drift)


def _interrupt(*_: object) -> None:
    """SIGTERM stops the stack the way Ctrl-C does."""
    raise KeyboardInterrupt


def _ensure_models() -> None:
    from service.models.build import build_all

    with console.status("building models if missing..."):
        build_all()
