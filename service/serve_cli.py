"""`servewatch serve`: run the instrumented Bento service (BentoML's server, our settings)."""

from __future__ import annotations

import os
import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from service.parent_watch import ARBITER_PID_ENV

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE_IMPORT = "service.app:Servewatch"


class Topology(StrEnum):
    """How the service's processes are laid out (docs/service.md, "Topology")."""

    SINGLE = "single"
    SPLIT = "split"


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 3000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (the gateway's when split).")
    ] = 1,
    topology: Annotated[
        Topology | None,
        typer.Option(
            help="single: one service does everything; split: a gateway and one model service "
            "per model family (SERVEWATCH_TOPOLOGY; default single).",
        ),
    ] = None,
    model_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Split: workers of each model service (SERVEWATCH_MODEL_SERVICE_WORKERS).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="YAML config (tenants, routing, batching, limits); else SERVEWATCH_CONFIG_FILE.",
        ),
    ] = None,
    metrics: Annotated[
        bool | None,
        typer.Option(
            "--metrics/--no-metrics", help="Service metrics (SERVEWATCH_METRICS_ENABLED)."
        ),
    ] = None,
    prediction_log: Annotated[
        bool | None,
        typer.Option(
            "--prediction-log/--no-prediction-log",
            help="Write prediction records (SERVEWATCH_PREDICTION_LOG_ENABLED).",
        ),
    ] = None,
) -> None:
    """Serve classify_ticket, classify_tickets and predict_risk with metrics and prediction log."""
    env = serve_environment(
        config=config,
        metrics=metrics,
        prediction_log=prediction_log,
        instance=f"{socket.gethostname()}-{port}",
        topology=topology.value if topology is not None else None,
        model_workers=model_workers,
    )
    env[ARBITER_PID_ENV] = str(os.getpid())  # this process becomes the arbiter
    command = serve_command(host=host, port=port, workers=workers)
    os.execve(sys.executable, command, env)


def serve_environment(
    *,
    config: Path | None = None,
    metrics: bool | None = None,
    prediction_log: bool | None = None,
    instance: str = "default",
    topology: str | None = None,
    model_workers: int | None = None,
) -> dict[str, str]:
    """The server's environment: settings validated now, paths absolute, the model store named.

    BentoML's home is the instance's own folder (`<home>/run/<instance>/bentoml`; an instance
    is a host and port): BentoML keeps its multiprocess metrics directory there and wipes it
    when a server starts, so servers sharing a home or a volume never touch each other's
    metrics. The model store stays shared (SERVEWATCH_MODELS_HOME).
    """
    from core.config import load_settings

    env = dict(os.environ)
    if config is not None:
        env["SERVEWATCH_CONFIG_FILE"] = str(config.resolve())
    if metrics is not None:
        env["SERVEWATCH_METRICS_ENABLED"] = str(metrics).lower()
    if prediction_log is not None:
        env["SERVEWATCH_PREDICTION_LOG_ENABLED"] = str(prediction_log).lower()
    if topology is not None:
        env["SERVEWATCH_TOPOLOGY"] = topology
    if model_workers is not None:
        env["SERVEWATCH_MODEL_SERVICE_WORKERS"] = str(model_workers)
    overrides = {"config_file": env.get("SERVEWATCH_CONFIG_FILE")} if config is not None else {}
    settings = load_settings(**overrides)  # a bad config stops here, with the field named
    # BentoML starts workers in the project folder: relative paths would move with it.
    env["SERVEWATCH_HOME"] = str(settings.home.resolve())
    if settings.config_file is not None:
        env["SERVEWATCH_CONFIG_FILE"] = str(Path(settings.config_file).resolve())
    models_home = settings.bentoml_home.resolve()
    models_home.mkdir(parents=True, exist_ok=True)
    env["SERVEWATCH_MODELS_HOME"] = str(models_home)
    instance_home = (settings.home / "run" / instance / "bentoml").resolve()
    instance_home.mkdir(parents=True, exist_ok=True)
    env["BENTOML_HOME"] = str(instance_home)
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return env


def serve_command(*, host: str, port: int, workers: int) -> list[str]:
    """`python -m bentoml serve service.app:Servewatch ...` for this interpreter."""
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        SERVICE_IMPORT,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(PROJECT_ROOT),
        "--arg",
        f"workers={workers}",
    ]


if __name__ == "__main__":
    typer.run(serve)
