"""`servewatch monitor run|schedule` and `servewatch report drift`."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from core.config import DEFAULT_PORTS

if TYPE_CHECKING:
    from core.config import Settings
    from monitors.backfill import PlannedRun
    from monitors.baselines import BaselineStore, RegistryLookups
    from monitors.runner import RunOutcome
    from storage.engine import Engine

monitor_app = typer.Typer(
    help="Drift, class-shift, output-schema and cost monitors over the prediction store.",
    no_args_is_help=True,
)
report_app = typer.Typer(help="Reports built from the prediction store.", no_args_is_help=True)


@report_app.callback()
def _reports() -> None:
    """Reports built from the prediction store."""  # keeps `report` a group of subcommands


err = Console(stderr=True, soft_wrap=True)  # one message, one line: greppable in logs
REQUIRED_TABLES = ("predictions", "monitor_results", "model_versions")

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default SERVEWATCH_DATABASE_URL or var/"),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="YAML config file; default SERVEWATCH_CONFIG_FILE"),
]
Start = Annotated[str, typer.Option("--start", help="Window start, ISO 8601 (UTC if no offset)")]
End = Annotated[str, typer.Option("--end", help="Window end (exclusive), ISO 8601")]
ReferenceStart = Annotated[
    str | None,
    typer.Option("--reference-start", help="Reference window start; default: the baseline"),
]
ReferenceEnd = Annotated[str | None, typer.Option("--reference-end", help="Reference window end")]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print every row as a JSON array on stdout")
]
ModelName = Annotated[str | None, typer.Option("--model", help="Only this model")]
MonitorNames = Annotated[
    list[str] | None,
    typer.Option("--monitor", help="Only these monitors (repeatable); default all"),
]


@dataclass
class RegistryHooks:
    """How the commands reach a model registry beyond the store's mirror.

    monitors may not import service: the composition root (servewatch.cli) sets `connect`;
    unset, baselines come from the store's mirror only.
    """

    connect: Callable[[Settings], RegistryLookups] | None = None


registry_hooks = RegistryHooks()


class CliError(Exception):
    """A failure explained in one line; `code` 2 for bad input, 1 for an unusable store."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn expected failures into one red line on stderr and a non-zero exit."""
    from core.config import ConfigError
    from core.timeutil import InvalidWindowError
    from monitors.drift_report import ReportInputError
    from monitors.runner import UnknownModelError
    from storage.errors import StoreError

    try:
        yield
    except CliError as exc:
        _fail(str(exc), exc.code)
    except ConfigError as exc:
        _fail(f"configuration error: {exc}", 2)
    except (InvalidWindowError, UnknownModelError, ReportInputError) as exc:
        _fail(str(exc), 2)
    except StoreError as exc:
        _fail(f"store error: {getattr(exc, 'orig', None) or exc}", 1)


def _fail(message: str, code: int) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def command_settings(config: Path | None) -> Settings:
    from core.config import load_settings

    return load_settings(config_file=config) if config is not None else load_settings()


def open_store(url: str) -> Engine:
    """An engine on a reachable, migrated store, or a CliError saying what is wrong."""
    from storage.engine import create_store_engine, shown_url, sqlite_file, table_names
    from storage.errors import StoreError

    shown = shown_url(url)
    database = sqlite_file(url)
    if database is not None and not database.exists():  # connecting would create an empty file
        raise CliError(f"no store at {shown}: run `servewatch db upgrade` first")
    try:
        engine = create_store_engine(url)
        tables = table_names(engine)
    except StoreError as exc:
        raise CliError(f"cannot reach the store at {shown}: {getattr(exc, 'orig', exc)}") from exc
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        engine.dispose()
        raise CliError(
            f"the store at {shown} lacks table(s) {', '.join(missing)}: "
            "run `servewatch db upgrade` first"
        )
    return engine


def _baselines(engine: Engine, settings: Settings) -> BaselineStore:
    """Baselines from the store's registry mirror, else from the registry hooked in (if any)."""
    from monitors.baselines import BaselineStore

    if registry_hooks.connect is None:
        return BaselineStore(engine)
    lookups = registry_hooks.connect(settings)
    return BaselineStore(
        engine,
        registry=lookups.metadata,
        registry_has_model=lookups.has_model,
        registry_versions=lookups.versions,
    )


def _reference_window(start: str | None, end: str | None) -> Any:
    from core.timeutil import Window

    if start is None and end is None:
        return None
    if start is None or end is None:
        raise CliError("--reference-start and --reference-end go together", code=2)
    return Window.parse(start, end)


@monitor_app.command()
def run(
    start: Start,
    end: End,
    reference_start: ReferenceStart = None,
    reference_end: ReferenceEnd = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
    model: ModelName = None,
    monitor: MonitorNames = None,
    config: ConfigFile = None,
) -> None:
    """Run the monitors over one window, store the rows (replacing a re-run) and print them."""
    with clear_errors():
        from core.contracts import MONITOR_NAMES
        from core.timeutil import Window
        from monitors.runner import run_monitors, store_results

        window = Window.parse(start, end)
        reference = _reference_window(reference_start, reference_end)
        monitors = tuple(monitor or MONITOR_NAMES)
        unknown = [m for m in monitors if m not in MONITOR_NAMES]
        if unknown:
            known = ", ".join(MONITOR_NAMES)
            raise CliError(f"unknown monitor(s) {', '.join(unknown)}; known: {known}", code=2)
        settings = command_settings(config)
        engine = open_store(database_url or settings.resolved_database_url)
        try:
            with _progress(len(monitors)) as advance:
                outcome = run_monitors(
                    engine,
                    window,
                    settings.config,
                    reference_window=reference,
                    model_name=model,
                    monitors=monitors,
                    baselines=_baselines(engine, settings),
                    progress=advance,
                )
                advance("storing results")
                store_results(engine, outcome)
        finally:
            engine.dispose()
        _print_outcome(outcome, json_output)


@contextmanager
def _progress(steps: int) -> Iterator[Any]:
    """A transient progress bar on stderr; yields a callback that starts the next step."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("starting", total=steps + 1)
        started = False

        def advance(description: str) -> None:
            nonlocal started
            progress.update(task, description=description, advance=1 if started else 0)
            started = True

        yield advance
        progress.update(task, completed=steps + 1)


def _print_outcome(outcome: RunOutcome, json_output: bool) -> None:
    if json_output:
        rows = [result.to_json() for result in outcome.results]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        _print_table(outcome)
    if not outcome.results:
        err.print("no registered model and no predictions in or before the window: no rows")


def _print_table(outcome: RunOutcome) -> None:
    from rich.table import Table

    table = Table("monitor", "model", "version", "tenant", "metric", "value", "status", "n")
    styles = {"alert": "red", "warn": "yellow", "insufficient_data": "dim"}
    for r in outcome.results:
        value = "" if r.value is None else f"{r.value:.4g}"
        status = f"[{styles[r.status]}]{r.status}[/]" if r.status in styles else r.status
        table.add_row(
            r.monitor, r.model_name, r.model_version, r.tenant, r.metric, value, status, str(r.n)
        )
    console = Console()
    if not console.is_terminal:  # piped: no terminal width to fit, so do not squeeze columns
        console = Console(width=200)
    console.print(table)


ENGINES = ("sql", "spark")


@monitor_app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="Span start, ISO 8601 (UTC if no offset)")],
    end: Annotated[str, typer.Option("--to", help="Span end (exclusive), ISO 8601")],
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="sql: the store (monitors.source: its rollups or raw rows); "
            "spark: Apache Spark over the --parquet export",
        ),
    ] = "sql",
    parquet: Annotated[
        Path | None,
        typer.Option("--parquet", help="Folder written by `servewatch export parquet` (spark)"),
    ] = None,
    master: Annotated[
        str, typer.Option("--master", help="Spark master: local[N], spark://HOST:7077, yarn")
    ] = "local[2]",
    store: Annotated[
        bool,
        typer.Option("--store/--no-store", help="Upsert the rows into monitor_results"),
    ] = True,
    json_output: JsonOutput = False,
    model: ModelName = None,
    monitor: MonitorNames = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Run the windows the scheduler would have run over a span, on the store's SQL or on
    Spark over a Parquet export, and store their rows as the scheduler does (a re-run replaces).

    Baselines and results stay in the store; with --engine spark the predictions' aggregates
    come from the export only.
    """
    with clear_errors():
        from core.contracts import MONITOR_NAMES
        from core.timeutil import Window
        from monitors.backfill import plan

        span = Window.parse(start, end)
        monitors = tuple(monitor or MONITOR_NAMES)
        unknown = [m for m in monitors if m not in MONITOR_NAMES]
        if unknown:
            known = ", ".join(MONITOR_NAMES)
            raise CliError(f"unknown monitor(s) {', '.join(unknown)}; known: {known}", code=2)
        _check_engine(engine_name, parquet)
        settings = command_settings(config)
        runs = plan(span, settings.config, monitors)
        if not runs:
            raise CliError("no scheduled window of the monitors lies within the span", code=2)
        engine = open_store(database_url or settings.resolved_database_url)
        try:
            outcomes = _backfill(engine, settings, runs, engine_name, parquet, master, model, store)
        finally:
            engine.dispose()
        if json_output:
            rows = [result.to_json() for outcome in outcomes for result in outcome.results]
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        else:
            _print_summary(outcomes)
        where = "stored in monitor_results" if store else "not stored (--no-store)"
        rows_n = sum(len(o.results) for o in outcomes)
        err.print(f"{len(runs)} window run(s) on {engine_name}, {rows_n} rows, {where}")


def _check_engine(engine_name: str, parquet: Path | None) -> None:
    if engine_name not in ENGINES:
        raise CliError(f"unknown engine {engine_name!r}; known: {', '.join(ENGINES)}", code=2)
    if engine_name == "spark" and parquet is None:
        raise CliError("--engine spark reads the export named by --parquet DIR", code=2)
    if engine_name == "sql" and parquet is not None:
        raise CliError("--parquet is read by --engine spark only", code=2)


def _backfill(
    engine: Engine,
    settings: Settings,
    runs: list[PlannedRun],
    engine_name: str,
    parquet: Path | None,
    master: str,
    model: str | None,
    store: bool,
) -> list[RunOutcome]:
    """The backfill's outcomes, each stored as soon as it is computed (when `store`)."""
    from monitors.backfill import backfill
    from monitors.runner import store_results

    with _progress(len(runs)) as advance, _aggregate_source(engine_name, parquet, master) as source:

        def done(outcome: RunOutcome) -> None:
            if store:
                store_results(engine, outcome)
            advance(f"{outcome.window.start.isoformat()} .. {outcome.window.end.isoformat()}")

        advance(f"starting {engine_name}")
        return backfill(
            engine,
            runs,
            settings.config,
            source=source,
            baselines=_baselines(engine, settings),
            model_name=model,
            done=done,
        )


@contextmanager
def _aggregate_source(engine_name: str, parquet: Path | None, master: str) -> Iterator[Any]:
    """None for SQL (the backfill's default), or Spark over the export, stopped afterwards."""
    if engine_name == "sql" or parquet is None:
        yield None
        return
    if not parquet.is_dir():
        raise CliError(f"no export folder at {parquet}: run `servewatch export parquet`", code=2)
    try:
        from monitors.spark_aggregates import SparkAggregates, spark_session
    except ImportError as exc:
        raise CliError(
            f"--engine spark needs PySpark ({exc}): install the spark extra, "
            "`uv sync --extra spark` or `pip install 'servewatch[spark]'`"
        ) from exc
    try:
        spark = spark_session(master)
    except Exception as exc:  # no Java, or an unreachable master: say so in one line
        raise CliError(f"cannot start Spark on {master}: {str(exc).splitlines()[0]}") from exc
    try:
        yield SparkAggregates(spark, parquet)
    finally:
        spark.stop()


def _print_summary(outcomes: list[RunOutcome]) -> None:
    """Rows per monitor and status over every window."""
    from collections import Counter

    from rich.table import Table

    counts: Counter[tuple[str, str]] = Counter(
        (r.monitor, r.status) for o in outcomes for r in o.results
    )
    statuses = ("ok", "warn", "alert", "insufficient_data")
    table = Table("monitor", *statuses, title="rows per status")
    for name in sorted({m for m, _ in counts}):
        table.add_row(name, *(str(counts[(name, s)]) for s in statuses))
    Console(width=200).print(table)


@monitor_app.command()
def schedule(
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Address of the /metrics endpoint")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of /metrics, /reports and /runbooks (0: any free one)")
    ] = DEFAULT_PORTS["monitors"],
    once: Annotated[
        bool, typer.Option("--once", help="Run the due windows once and exit (for cron)")
    ] = False,
    max_catchup: Annotated[
        int, typer.Option(help="At most this many missed windows per monitor are caught up")
    ] = 288,
    finops_out_dir: Annotated[
        Path | None,
        typer.Option(help="Weekly FinOps report folder; default <SERVEWATCH_HOME>/reports"),
    ] = None,
    finops: Annotated[
        bool, typer.Option("--finops/--no-finops", help="Write the weekly FinOps report")
    ] = True,
    drift_reports: Annotated[
        bool,
        typer.Option(
            "--drift-reports/--no-drift-reports",
            help="Write the drift report of every window at warn or alert",
        ),
    ] = True,
    config: ConfigFile = None,
) -> None:
    """Run every monitor on its cadence from the config and serve the results on /metrics.

    The weekly FinOps report is written too, on config.monitors.finops_weekday, and the drift
    report of each window at warn or alert under <SERVEWATCH_HOME>/reports; the same server
    serves them under /reports and the runbooks at /runbooks.
    """
    with clear_errors():
        from prometheus_client import CollectorRegistry

        from monitors.exporter import MonitorExporter
        from monitors.http_server import start_server
        from monitors.runbooks import RUNBOOKS_FILE
        from monitors.scheduler import Scheduler

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        settings = command_settings(config)
        engine = open_store(database_url or settings.resolved_database_url)
        registry = CollectorRegistry()
        exporter = MonitorExporter(registry, settings.config)
        scheduler = Scheduler(
            engine,
            settings.config,
            exporter,
            max_catchup=max_catchup,
            baselines=_baselines(engine, settings),
            finops_out_dir=(finops_out_dir or settings.reports_dir) if finops else None,
            reports_dir=settings.reports_dir if drift_reports else None,
        )
        if once:
            runs = scheduler.tick()
            failed = [r for r in runs if r.outcome != "success"]
            err.print(f"{len(runs) - len(failed)} run(s) succeeded, {len(failed)} failed")
            raise typer.Exit(1 if failed else 0)
        try:
            server = start_server(host, port, registry, settings.reports_dir, RUNBOOKS_FILE)
        except OSError as exc:
            raise CliError(f"cannot serve /metrics on {host}:{port}: {exc.strerror}") from exc
        base = f"http://{host}:{server.server_port}"
        err.print(f"serving {base}/metrics, {base}/reports/ and {base}/runbooks")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            scheduler.serve(stop)
        finally:
            server.shutdown()
            server.server_close()
            engine.dispose()


@report_app.command()
def drift(
    model: Annotated[str, typer.Option("--model", help="Registered model name")],
    start: Start,
    end: End,
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file; default var/reports/drift-...html")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Model version; default the busiest")
    ] = None,
    reference_start: ReferenceStart = None,
    reference_end: ReferenceEnd = None,
    max_rows: Annotated[
        int, typer.Option(help="Sample at most this many rows per side (evenly, by id)")
    ] = 200_000,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Write the drift report of one model version: servewatch's verdict per tenant, with
    Evidently's tests of confidence and predicted class (its interactive page beside it)."""
    with clear_errors():
        from core.timeutil import Window
        from monitors.drift_report import build_drift_report

        window = Window.parse(start, end)
        reference = _reference_window(reference_start, reference_end)
        settings = command_settings(config)
        engine = open_store(database_url or settings.resolved_database_url)
        stamp = window.start.strftime("%Y%m%dT%H%M%SZ")
        path = out or settings.reports_dir / f"drift-{model}-{stamp}.html"
        try:
            with err.status("building the drift report with Evidently"):
                summary = build_drift_report(
                    engine,
                    settings.config,
                    model,
                    window,
                    path,
                    model_version=version,
                    reference_window=reference,
                    baselines=_baselines(engine, settings),
                    max_rows=max_rows,
                )
        finally:
            engine.dispose()
        err.print(
            f"{summary.model_name} {summary.model_version}: {summary.current_rows} rows vs "
            f"{summary.reference_rows} {summary.reference} rows"
        )
        for tenant, statuses in summary.verdicts.items():
            verdict = ", ".join(f"{m} {s}" for m, s in statuses.items()) or "no rows"
            err.print(f"  {tenant}: {verdict}", highlight=False)
        typer.echo(str(summary.path))
