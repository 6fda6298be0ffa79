"""Alerts on the data path: the prediction log, monitor freshness and scrape targets."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby

from alerts.promql import one_of
from alerts.rules import AlertRule, RuleGroup
from alerts.spec import PredictionLogSpec, StalenessAlert, TargetAlert, duration_seconds
from core.config import MonitorSchedule


def dropped_alert(spec: PredictionLogSpec, runbook: str) -> AlertRule:
    alert = spec.dropped
    return AlertRule(
        name=alert.alert,
        expr=(
            "sum(increase(servewatch_prediction_log_records_total"
            f'{{event="dropped"}}[{alert.window}])) > 0'
        ),
        severity=alert.severity,
        for_=alert.for_,
        summary="The service is dropping prediction records.",
        description=(
            f"{{{{ $value | humanize }}}} prediction records were dropped in the last "
            f"{alert.window} (queue full or spill failed); monitors and reports will never see "
            "them."
        ),
        runbook_url=f"{runbook}#{alert.alert.lower()}",
    )


def spill_alert(spec: PredictionLogSpec, runbook: str) -> AlertRule:
    alert = spec.spill_backlog
    return AlertRule(
        name=alert.alert,
        expr=f"sum(servewatch_prediction_log_spill_backlog) > {alert.records}",
        severity=alert.severity,
        for_=alert.for_,
        summary="Prediction records are piling up in spill files.",
        description=(
            "{{ $value | humanize }} prediction records wait in spill files and the backlog "
            f"has stayed above {alert.records} for {alert.for_}: the store is unreachable or "
            "replay is stuck."
        ),
        runbook_url=f"{runbook}#{alert.alert.lower()}",
    )


def replay_lag_alert(spec: PredictionLogSpec, runbook: str) -> AlertRule:
    alert = spec.replay_lag
    return AlertRule(
        name=alert.alert,
        expr=(f"max(servewatch_prediction_log_replay_lag_seconds) > {duration_seconds(alert.lag)}"),
        severity=alert.severity,
        for_=alert.for_,
        summary="Spilled prediction records are not replayed into the store.",
        description=(
            "The oldest spilled prediction record is {{ $value | humanizeDuration }} old "
            f"(threshold {alert.lag}); monitor windows that cover it are incomplete."
        ),
        runbook_url=f"{runbook}#{alert.alert.lower()}",
    )


def staleness_thresholds(
    spec: StalenessAlert, schedules: Mapping[str, MonitorSchedule]
) -> dict[int, list[str]]:
    """Seconds without a successful run after which each monitor is stale, grouped."""
    limits = {name: spec.missed_runs * s.every_seconds for name, s in schedules.items()}
    ordered = sorted(limits.items(), key=lambda item: (item[1], item[0]))
    return {
        limit: [name for name, _ in group]
        for limit, group in groupby(ordered, key=lambda item: item[1])
    }


def staleness_alert(
    spec: StalenessAlert, schedules: Mapping[str, MonitorSchedule], runbook: str
) -> AlertRule:
    clauses = [
        "(\n"
        "  time() - max by (monitor) (servewatch_monitor_last_success_timestamp_seconds"
        f'{{monitor=~"{one_of(monitors)}"}})\n'
        f") > {limit}"
        for limit, monitors in staleness_thresholds(spec, schedules).items()
    ]
    return AlertRule(
        name=spec.alert,
        expr="\nor\n".join(clauses),
        severity=spec.severity,
        for_=spec.for_,
        summary="Monitor {{ $labels.monitor }} has stopped producing results.",
        description=(
            "{{ $labels.monitor }} last completed a run {{ $value | humanizeDuration }} ago, "
            f"{spec.missed_runs} or more of its scheduled intervals; its gauges and the "
            "drift alerts built on them are stale."
        ),
        runbook_url=f"{runbook}#{spec.alert.lower()}",
    )


def results_staleness_alert(spec: StalenessAlert, runbook: str) -> AlertRule:
    """The results a monitor exports are older than `missed_runs` of its scheduled intervals."""
    return AlertRule(
        name=spec.alert,
        expr=(
            "time() - max by (monitor) (servewatch_monitor_last_run_timestamp_seconds)\n"
            f"> {spec.missed_runs} * max by (monitor) (servewatch_monitor_schedule_seconds)"
        ),
        severity=spec.severity,
        for_=spec.for_,
        summary="The results of monitor {{ $labels.monitor }} are stale.",
        description=(
            "The results monitor {{ $labels.monitor }} exports come from a run "
            f"{{{{ $value | humanizeDuration }}}} ago, more than {spec.missed_runs} of its "
            "scheduled intervals: its gauges, and the alerts built on them, describe the past."
        ),
        runbook_url=f"{runbook}#{spec.alert.lower()}",
    )


def target_alert(spec: TargetAlert, runbook: str) -> AlertRule:
    """The job's targets are down, or the job has none at all."""
    selector = f'up{{job="{spec.job}"}}'
    return AlertRule(
        name=spec.alert,
        expr=f"{selector} == 0 or absent({selector})",
        severity=spec.severity,
        for_=spec.for_,
        summary=f"Prometheus cannot scrape {spec.job}.",
        description=(
            f"A {{{{ $labels.job }}}} target has been down, or the job has had no target, for "
            f"{spec.for_}; its metrics and every alert built on them are missing."
        ),
        runbook_url=f"{runbook}#{spec.alert.lower()}",
    )


def pipeline_group(
    log: PredictionLogSpec,
    staleness: StalenessAlert,
    results_staleness: StalenessAlert,
    targets: tuple[TargetAlert, ...],
    schedules: Mapping[str, MonitorSchedule],
    runbook: str,
) -> RuleGroup:
    rules = (
        dropped_alert(log, runbook),
        spill_alert(log, runbook),
        replay_lag_alert(log, runbook),
        staleness_alert(staleness, schedules, runbook),
        results_staleness_alert(results_staleness, runbook),
        *(target_alert(t, runbook) for t in targets),
    )
    return RuleGroup("servewatch-pipeline", rules)
