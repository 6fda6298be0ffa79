"""The `servewatch` command: one entry point whose subcommands live beside their packages."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from alerts.cli import alert_sink
from alerts.cli import app as alerts_app
from dashboards.cli import app as dashboards_app
from monitors.cli import monitor_app, registry_hooks, report_app
from monitors.finops.command import finops
from servewatch.audit_cli import stale
from servewatch.demo_cli import stack_app, traffic
from servewatch.deploy_cli import app as deploy_app
from servewatch.export_cli import app as export_app
from servewatch.model_registry import bentoml_lookups
from servewatch.release_cli import app as release_app
from servewatch.replay_cli import replay
from servewatch.rollout_cli import app as rollout_app
from servewatch.rollout_cli import rollback
from service.models.cli import app as models_app
from service.serve_cli import serve
from storage.cli import app as db_app
from storage.cli import audit_app

app = typer.Typer(
    help="servewatch: observability and drift monitoring for BentoML-served models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
audit_app.command("stale")(stale)
app.add_typer(audit_app, name="audit")
app.add_typer(models_app, name="models")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(alerts_app, name="alerts")
# The monitors fall back to the BentoML model store for baselines the store does not mirror.
registry_hooks.connect = bentoml_lookups
app.add_typer(monitor_app, name="monitor")
report_app.command("finops")(finops)
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.add_typer(stack_app, name="stack")
app.add_typer(deploy_app, name="deploy")
app.add_typer(release_app, name="release")
app.add_typer(rollout_app, name="rollout")
app.command("rollback")(rollback)
app.command("serve")(serve)
app.command("traffic")(traffic)
app.command("replay")(replay)
app.command("alert-sink")(alert_sink)


def main() -> None:
    """Run the CLI; configuration errors become one clear line and exit code 2."""
    from core.config import ConfigError

    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")  # no usage reports from our commands
    try:
        app()
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]configuration error:[/red] {exc}", highlight=False)
        sys.exit(2)
