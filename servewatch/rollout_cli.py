"""`servewatch rollout start | status | promote | abort | list` and `servewatch rollback`."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.config import Settings
from core.files import write_atomically
from core.timeutil import iso_utc
from monitors.replay_compare import GateVerdict
from monitors.rollout_gates import InputsNotStored
from servewatch.release_check import CheckReport, ServiceTarget
from servewatch.release_cli import checked_or_exit, show_report
from servewatch.rollout import (
    RolledBack,
    Scope,
    parse_model_ref,
    parse_steps,
    pick_rollout,
    plan_rollout,
    roll_back,
    serving_config,
)
from servewatch.rollout_status import StepStatus, model_replayer, step_status
from servewatch.rollout_steps import (
    AutoPolicy,
    GoldenCheck,
    Judge,
    golden_after,
    no_golden,
    promote_on_gates,
    run_auto,
    service_golden,
)
from servewatch.store_options import ConfigOption, DatabaseUrl, settings_for, store_engine
from storage.engine import Engine
from storage.rollouts import (
    Rollout,
    RolloutError,
    RolloutPlan,
    abort_rollout,
    list_rollouts,
    start_rollout,
)

app = typer.Typer(
    help="Canary rollouts: a candidate version takes a growing share of its baseline's traffic.",
    no_args_is_help=True,
)

GOLDEN_SETTLE_MARGIN_S = 1.0
IdOption = Annotated[int | None, typer.Option("--id", help="the rollout (default: the only one)")]
ActorOption = Annotated[str | None, typer.Option(help="who acts (default: the user)")]
MinRowsOption = Annotated[
    int | None,
    typer.Option(help="candidate rows a step needs to be judged (default: the config's)", min=1),
]
UrlOption = Annotated[
    str | None, typer.Option(help="the live service: its golden set runs after each change")
]
ApiKeyOption = Annotated[
    str | None, typer.Option(envvar="SERVEWATCH_API_KEY", help="a tenant's key, for --url")
]


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    """The store's engine; a refused rollout change ends the command with its reason."""
    with store_engine(settings) as engine:
        try:
            yield engine
        except RolloutError as exc:
            Console(stderr=True).print(f"[red]refused:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc


def _registry_resolver(home: Path) -> Any:
    from service.models.registry import get_model

    return lambda name, version: get_model(name, version, home=home).version


def _show(rollouts: list[Rollout], title: str) -> None:
    table = Table("id", "candidate", "baseline", "endpoints", "weight %", "steps", title=title)
    for column in ("scope", "mode", "state", "updated", "by"):
        table.add_column(column)
    for r in rollouts:
        scope = ", ".join(f"{k}={v}" for k, v in (("tenant", r.tenant), ("region", r.region)) if v)
        steps = ",".join(f"{s:g}" for s in r.steps)
        table.add_row(
            str(r.id), r.candidate, r.baseline, "\n".join(r.endpoints), f"{r.weight:g}", steps,
            scope or "all", r.mode, r.state, iso_utc(r.updated_at), r.actor,
        )  # fmt: skip
    Console().print(table)


@app.command()
def start(
    candidate: Annotated[str, typer.Option(help="MODEL:VERSION (`latest` is resolved now)")],
    steps: Annotated[str, typer.Option(help="percent of traffic per step")] = "5,25,50,100",
    tenant: Annotated[str | None, typer.Option(help="only this tenant's requests")] = None,
    region: Annotated[str | None, typer.Option(help="only this region's requests")] = None,
    sticky: Annotated[bool, typer.Option(help="keep each tenant on one side")] = False,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
    skip_checks: Annotated[
        bool,
        typer.Option("--skip-checks", help="start without checking the candidate (audited)"),
    ] = False,
) -> None:
    """Check CANDIDATE (loads, provider, golden set), then send it the first step's share of
    the baseline's traffic; a candidate that fails its checks never receives any."""
    settings = settings_for(config, database_url)
    with _engine(settings) as engine:
        routes = serving_config(engine, settings.config, parse_model_ref(candidate)[0])
        plan = plan_rollout(
            routes,
            candidate,
            parse_steps(steps),
            _registry_resolver(settings.bentoml_home),
            Scope(tenant=tenant, region=region, mode="sticky" if sticky else "hash"),
        )
        checks = {"skipped": True} if skip_checks else _candidate_checked(settings, plan)
        rollout = start_rollout(
            engine,
            plan,
            actor=actor or getpass.getuser(),
            now=_now(),
            details={"checks": checks},
        )
    _show([rollout], "rollout started (workers apply it within seconds)")


def _candidate_checked(settings: Settings, plan: RolloutPlan) -> dict[str, Any]:
    """The candidate's checks before traffic (`release check`'s), shown; exit 1 on a failure."""
    tags = [(plan.candidate_model, plan.candidate_version)]
    refusal = "rollout refused: the candidate's checks failed"
    return checked_or_exit(settings, tags, refusal).audit_details()


@app.command()
def status(
    rollout_id: IdOption = None,
    min_rows: MinRowsOption = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the status here")] = None,
) -> None:
    """The current step, candidate against baseline, gate by gate; exit 1 when a gate fails."""
    settings = settings_for(config, database_url)
    with _engine(settings) as engine:
        current = pick_rollout(engine, rollout_id)
        found = _judge(engine, settings, min_rows)(current, _now())
    _show_status(found)
    if json_out is not None:
        write_atomically(json_out, json.dumps(found.as_json(), indent=2))
    if found.verdict == "fail":
        raise typer.Exit(1)


@app.command()
def promote(
    rollout_id: IdOption = None,
    force: Annotated[
        bool, typer.Option(help="promote although a gate fails (audited as forced)")
    ] = False,
    auto: Annotated[
        bool, typer.Option(help="step on a schedule until promoted; abort on a failed gate")
    ] = False,
    interval: Annotated[float, typer.Option(help="--auto: seconds per judgement", min=0.1)] = 60.0,
    max_wait: Annotated[
        float, typer.Option(help="--auto: seconds a step may wait for enough rows", min=0)
    ] = 1800.0,
    min_rows: MinRowsOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
) -> None:
    """Move the active rollout to its next step when every gate passes (the last step promotes
    it at 100 %); with --auto, keep stepping on a schedule, aborting on a failed gate."""
    if force and auto:
        raise typer.BadParameter("--force promotes one step by hand; it does not go with --auto")
    settings = settings_for(config, database_url)
    who = actor or getpass.getuser()
    golden = _golden(settings, url, api_key)
    with _engine(settings) as engine:
        current = pick_rollout(engine, rollout_id)
        judge = _judge(engine, settings, min_rows)
        if auto:
            policy = AutoPolicy(interval_s=interval, max_wait_s=max_wait)
            outcome = run_auto(
                engine, current.id, judge=judge, policy=policy, actor=who, clock=_now,
                sleep=time.sleep, golden=golden, on_status=_show_status,
            )  # fmt: skip
            _show([outcome.rollout], f"--auto: {outcome.end} ({outcome.reason})")
            if outcome.end != "promoted":
                raise typer.Exit(1)
            return
        found = judge(current, _now())
        _show_status(found)
        rollout = promote_on_gates(engine, found, actor=who, now=_now(), force=force)
        report = golden_after(engine, rollout, "step", golden, actor=who, now=_now())
    title = "rollout promoted" if rollout.state == "promoted" else "rollout stepped"
    _show([rollout], title + (" (FORCED past failing gates)" if found.verdict != "pass" else ""))
    _golden_result(report)


@app.command()
def abort(
    rollout_id: IdOption = None,
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit log)")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
) -> None:
    """End the active rollout: every request goes back to the baseline within seconds."""
    settings = settings_for(config, database_url)
    golden = _golden(settings, url, api_key)
    with _engine(settings) as engine:
        current = pick_rollout(engine, rollout_id)
        who = actor or getpass.getuser()
        rollout = abort_rollout(engine, current.id, actor=who, now=_now(), reason=reason)
        report = golden_after(engine, rollout, "abort", golden, actor=who, now=_now())
    _show([rollout], "rollout aborted")
    _golden_result(report)


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 20,
    database_url: DatabaseUrl = None,
) -> None:
    """Rollouts, newest first."""
    with _engine(settings_for(None, database_url)) as engine:
        rollouts = list_rollouts(engine, limit=limit)
    _show(rollouts, "rollouts")


def rollback(
    config_out: Annotated[
        Path | None,
        typer.Option(help="where the parent release's configuration goes (release rollback)"),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    actor: ActorOption = None,
) -> None:
    """Abort the active rollout, else undo the promoted one, else restore the parent release."""
    settings = settings_for(config, database_url)
    golden = _golden(settings, url, api_key)
    who = actor or getpass.getuser()
    with _engine(settings) as engine:
        done = roll_back(
            engine,
            actor=who,
            now=_now(),
            release_config_out=partial(_write_config, config_out),
        )
        # After an abort the baseline serves again; after a release rollback, its versions.
        after = "abort" if done.release is None else "step"
        reports = [
            golden_after(engine, r, after, golden, actor=who, now=_now()) for r in done.rollouts
        ]
    if done.release is None:
        _show(done.rollouts, "rolled back: the baseline serves again within seconds")
    else:
        _show_release_rollback(done, config_out)
    for report in reports:
        _golden_result(report)


def _show_release_rollback(done: RolledBack, config_out: Path | None) -> None:
    assert done.release is not None
    if done.rollouts:
        _show(done.rollouts, "the parent release's versions serve within seconds")
    console = Console(highlight=False)
    console.print(
        f"release {done.from_release} rolled back to release {done.release.id}; "
        f"its configuration is in {config_out}: start on it next"
    )
    if done.needs_restart:
        console.print(
            "[yellow]only a restart on that configuration changes[/yellow] "
            + ", ".join(done.needs_restart)
            + " (another model, other rules, or an endpoint added or dropped)"
        )


def _judge(engine: Engine, settings: Settings, min_rows: int | None) -> Judge:
    """The step judge on the configured gates (--min-rows over their minimum)."""
    gates = settings.config.release.gates
    if min_rows is not None:
        gates = gates.model_copy(update={"min_candidate_rows": min_rows})
    replay = model_replayer(engine, settings)
    monitors = settings.config.monitors
    return lambda rollout, now: step_status(
        engine, rollout, gates=gates, monitors=monitors, now=now, replay=replay
    )


def _golden(settings: Settings, url: str | None, api_key: str | None) -> GoldenCheck:
    """The live golden check when --url is given (it needs an API key)."""
    if url is None:
        return no_golden
    if api_key is None:
        raise typer.BadParameter("--url needs --api-key (or SERVEWATCH_API_KEY)")
    target = ServiceTarget(url, api_key, settings.config, settings.bentoml_home)
    # Every worker applies a change within one poll of the store: check after that.
    settle_s = settings.rollout_poll_interval_s + GOLDEN_SETTLE_MARGIN_S
    return service_golden(target, settings.config.release.golden, settle_s)


def _show_status(found: StepStatus) -> None:
    """Both windows' numbers and sizes, then each gate: value, limit, n, verdict."""
    r = found.rollout
    console = Console()
    title = f"rollout {r.id} step {r.step_index} ({r.weight:g} %) since {iso_utc(found.since)}"
    sides = Table("side", "version", "rows", "errors", title=title)
    shown = {"error_rate": "error rate", "p95_ms": "p95 ms", "p99_ms": "p99 ms"}
    shown["schema_failure_rate"] = "schema failures"
    for header in shown.values():
        sides.add_column(header)
    for side in ("baseline", "candidate"):
        window = getattr(found.evidence, side)
        numbers = window.summary()
        values = [_number(numbers[k]) for k in shown]
        sides.add_row(side, window.version, str(window.n), str(window.errors), *values)
    console.print(sides)
    gates = Table("gate", "value", "limit", "n", "verdict", "why not judged")
    gates.title = f"verdict: {found.verdict}"
    colours = {"pass": "green", "fail": "red", "insufficient_data": "yellow"}
    for g in found.gates:
        colour = colours[g.verdict]
        verdict = f"[{colour}]{g.verdict}[/{colour}]"
        gates.add_row(g.gate, _number(g.value), f"{g.limit:g}", str(g.n), verdict, _why(g))
    console.print(gates)
    if isinstance(found.evidence.replay, InputsNotStored):
        console.print(found.evidence.replay.reason)


def _why(gate: GateVerdict) -> str:
    """Why a gate could not judge: too few candidate rows, or its own reason."""
    if gate.verdict != "insufficient_data":
        return ""
    reasons = []
    if "min_candidate_rows" in gate.details:
        reasons.append(f"{gate.details['min_candidate_rows']} candidate rows needed")
    if "reason" in gate.details:
        reasons.append(str(gate.details["reason"]))
    return "; ".join(reasons) or "nothing to measure yet"


def _golden_result(report: CheckReport | None) -> None:
    if report is None:
        return
    show_report(report)
    if not report.passed:
        Console(stderr=True).print("[red]the golden set fails on the live service[/red]")
        raise typer.Exit(1)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _write_config(path: Path | None, text: str) -> None:
    if path is None:
        raise RolloutError("no rollout in force: pass --config-out to restore the parent release")
    write_atomically(path, text)


def _now() -> datetime:
    return datetime.now(UTC)
