"""`servewatch stack up` while it runs: start the planned stack, show what it concludes, stop
it, and sum it up (the live view and the summary come from servewatch.stack_status)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from core.config import Settings
from servewatch.demo_profile import DemoDrift, demo_alert_spec, demo_app_config
from servewatch.stack import RunningStack, StackPlan, plan_stack
from servewatch.stack_status import (
    Snapshot,
    read_notifications,
    read_snapshot,
    render_status,
    render_summary,
)

console = Console(stderr=True)


def run_stack(
    settings: Settings,
    config: Path | None,
    *,
    rate: float,
    traffic_for: float,
    run_for: float | None,
    drift: DemoDrift | None,
) -> None:
    """Run the stack until `run_for` seconds pass or Ctrl-C (KeyboardInterrupt), then stop it."""
    plan = _plan(settings, config, rate, traffic_for, drift)
    stack = RunningStack(plan)
    session = StackSession(stack, drift)
    try:
        _start(stack)
        _print_plan(plan, settings.resolved_database_url, drift)
        session.watch(run_for)
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        session.finish(settings)


def _plan(
    settings: Settings,
    config: Path | None,
    rate: float,
    traffic_for: float,
    drift: DemoDrift | None,
) -> StackPlan:
    """The stack for `config`, at the demo's pace when `drift` is given."""
    from alerts.spec import load_spec
    from core.config import app_config_yaml
    from core.files import write_atomically

    home = settings.home.resolve()
    workdir = home / "stack"
    config_file = config.resolve() if config else None
    spec = None
    traffic_args: list[str] = []
    if drift is not None:
        config_file = workdir / "demo-config.yaml"
        write_atomically(config_file, app_config_yaml(demo_app_config(settings.config)).encode())
        spec = demo_alert_spec(load_spec())
        traffic_args = ["--scenario", drift.traffic_scenario()]
    return plan_stack(
        workdir,
        home=home,
        config_file=config_file,
        database_url=settings.database_url,
        traffic_rate=rate,
        traffic_duration_s=traffic_for,
        traffic_args=traffic_args,
        alert_spec=spec,
    )


def _start(stack: RunningStack) -> None:
    with console.status("starting the stack...") as status:
        try:
            stack.start(on_ready=lambda c: status.update(f"{c.name} is up"))
        except (RuntimeError, TimeoutError) as exc:
            console.print(f"[red]error:[/red] {exc}; logs in {stack.logs}")
            raise typer.Exit(1) from exc


class StackSession:
    """The running stack as the terminal shows it: a live view, then a summary."""

    def __init__(self, stack: RunningStack, drift: DemoDrift | None) -> None:
        self.stack = stack
        self.drift = drift
        self.urls = {c.name: c.url for c in stack.plan.components if c.ready_path}
        self.started = time.monotonic()
        self.previous: Snapshot | None = None
        self.latest: Snapshot | None = None

    def read(self) -> Snapshot:
        snapshot = read_snapshot(time.monotonic() - self.started, self.urls)
        if self.latest is None or snapshot.at - self.latest.at >= 10 or self.previous is None:
            self.previous = self.latest  # rates over ~10 s, not over one refresh
        self.latest = snapshot
        return snapshot

    def view(self) -> Group:
        title = "servewatch stack (Ctrl-C stops everything)"
        if self.drift is not None:
            title += f"; demo drift: {self.drift.describe()}"
        return render_status(self.read(), self.previous, title)

    def watch(self, run_for: float | None) -> None:
        deadline = None if run_for is None else self.started + run_for
        with Live(self.view(), console=console, refresh_per_second=1) as live:
            while deadline is None or time.monotonic() < deadline:
                failed = {n: c for n, c in self.stack.exited().items() if n != "traffic"}
                if failed:
                    console.print(
                        f"[red]stopped unexpectedly:[/red] {failed}; see {self.stack.logs}"
                    )
                    raise typer.Exit(1)
                time.sleep(2)
                live.update(self.view())

    def finish(self, settings: Settings) -> None:
        """Stop the traffic, read the final figures, stop the rest, print the summary."""
        self.stack.stop_component("traffic")
        time.sleep(1)  # the last answers reach the counters
        final = self.read()
        notifications = read_notifications(self.urls.get("alert_sink"))
        self.stack.stop()
        console.print("everything stopped")
        stored = _stored_predictions(settings.resolved_database_url)
        reports = settings.reports_dir.resolve()
        Console().print(render_summary(final, stored, notifications, reports, self.urls))


def _stored_predictions(database_url: str) -> int | None:
    from storage.engine import create_store_engine
    from storage.errors import StoreError
    from storage.prediction_samples import prediction_count

    engine = create_store_engine(database_url)
    try:
        return prediction_count(engine)
    except StoreError:
        return None
    finally:
        engine.dispose()


def _print_plan(plan: StackPlan, database_url: str, drift: DemoDrift | None) -> None:
    table = Table(title="servewatch stack (Ctrl-C stops everything)")
    table.add_column("component")
    table.add_column("where")
    for component in plan.components:
        table.add_row(component.name, component.url if component.ready_path else "(client)")
    table.add_row("store", database_url)
    table.add_row("logs", str(plan.workdir / "logs"))
    if drift is not None:
        table.add_row("demo", f"windows of 60 s judged every 15 s; {drift.describe()}")
    Console().print(table)
