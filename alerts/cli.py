"""`servewatch alerts build` (rules, promtool tests, Alertmanager) and `servewatch alert-sink`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from alerts.spec import SPEC_FILE
from core.config import DEFAULT_PORTS

ALERTS_DIR = Path(__file__).parent
app = typer.Typer(help="Prometheus rules and Alertmanager configuration.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Prometheus rules and Alertmanager configuration."""


@app.command()
def build(
    out_dir: Annotated[Path, typer.Option(help="Where generated/ and alertmanager.yml go")] = (
        ALERTS_DIR
    ),
    spec_file: Annotated[Path, typer.Option("--spec", help="The alerting spec")] = SPEC_FILE,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="App config: links, receivers and monitor schedules (default: the spec's)",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is out of date")
    ] = False,
) -> None:
    """Write alerts/generated/*.yaml and alerts/alertmanager.yml from the spec."""
    from alerts.render import render
    from alerts.spec import SpecError, app_config_path, load_spec
    from core.config import ConfigError, load_app_config
    from core.generate import sync_generated

    try:
        spec = load_spec(spec_file)
        config = config_file or app_config_path(spec, spec_file)
        app_config = load_app_config(config)
    except (SpecError, ConfigError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    files = render(spec, app_config)
    code, lines = sync_generated(out_dir, files, "generated", "*.yaml", check=check)
    for line in lines:
        console.print(line)
    if code:
        raise typer.Exit(code)


def alert_sink(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = DEFAULT_PORTS["alert_sink"],
) -> None:
    """Record every notification posted to /<receiver>; list them at GET /notifications."""
    from alerts.sink import SinkServer, sink_log
    from core.config import load_settings

    notifications = sink_log(load_settings().home)
    server = SinkServer((host, port), notifications)
    signal.signal(signal.SIGTERM, _interrupt)
    console.print(f"alert-sink on {server.url}, recording to {notifications.path}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(*_: object) -> None:
    """SIGTERM stops the sink the way Ctrl-C does."""
    raise KeyboardInterrupt
