"""promtool unit-test cases for every alert: input series, and what must (not) fire when.

Cases are derived from the same spec as the rules, at both sides of each threshold, and
predict the firing alerts' labels and rendered annotations; promtool checks them against the
real rule evaluation. Long (~900 lines) on purpose: one case builder per kind of alert, each
short, side by side so that a new alert kind's cases are written next to their siblings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts import templating
from alerts.model_services import CALLS, ERRORS
from alerts.promql import le
from alerts.quality import insufficient_query
from alerts.rules import AlertRule
from alerts.slo import Objective, number, percent
from alerts.spec import (
    Alert,
    AlertSpec,
    AvailabilitySlo,
    BurnAlert,
    DriftAlert,
    MonitorAlert,
    burn_alert_name,
    duration_seconds,
)
from alerts.triage import monitor_window, signals
from core.catalog import LATENCY_BUCKETS, MODEL_CALL_ERROR_REASONS
from core.config import AppConfig, MonitorSchedule
from core.contracts import OUTCOMES, STATUS_CODES

INTERVAL = "1m"
REQUESTS_PER_MINUTE = 1000
ENDPOINT = "classify_ticket"
MODEL = {"model_name": "ticket_classifier", "model_version": "3"}
SERVICE_TARGET = {"job": "servewatch-service", "instance": "service:3000"}
MONITORS_TARGET = {"job": "servewatch-monitors", "instance": "monitors:9101"}


@dataclass(frozen=True)
class InputSeries:
    series: str
    values: str


@dataclass(frozen=True)
class Firing:
    """One alert expected to fire: the labels of its expression's result, its value, and the
    queries of its annotations that find data (the others find none)."""

    labels: Mapping[str, str]
    value: float
    found: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Check:
    alert: AlertRule
    at_minute: int
    firing: tuple[Firing, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval_time": f"{self.at_minute}m",
            "alertname": self.alert.name,
            "exp_alerts": [self._expected(f) for f in self.firing],
        }

    def _expected(self, firing: Firing) -> dict[str, Any]:
        annotations = {
            key: templating.render(text, firing.labels, firing.value, firing.found.__contains__)
            for key, text in self.alert.annotations.items()
        }
        return {
            "exp_labels": {**firing.labels, **self.alert.all_labels},
            "exp_annotations": annotations,
        }


@dataclass(frozen=True)
class Case:
    name: str
    series: tuple[InputSeries, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": INTERVAL,
            "input_series": [{"series": s.series, "values": s.values} for s in self.series],
            "alert_rule_test": [check.to_dict() for check in self.checks],
        }


def selector(name: str, labels: Mapping[str, str]) -> str:
    inner = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{inner}}}"


def counter(*segments: tuple[float, int]) -> str:
    """A counter sampled every minute from 0: each segment adds `per_minute` for `minutes`."""
    parts, value = [], 0.0
    for index, (per_minute, minutes) in enumerate(segments):
        if index == 0:
            parts.append(f"{number(value)}+{number(per_minute)}x{minutes}")
        else:
            parts.append(f"{number(value + per_minute)}+{number(per_minute)}x{minutes - 1}")
        value += per_minute * minutes
    return " ".join(parts)


def gauge(*segments: tuple[float, int]) -> str:
    """A gauge sampled every minute: each segment holds `value` for `minutes` more samples."""
    parts = []
    for index, (value, minutes) in enumerate(segments):
        parts.append(f"{number(value)}+0x{minutes if index == 0 else minutes - 1}")
    return " ".join(parts)


# --- SLO burn alerts -------------------------------------------------------------------------


def exact_ratio(share: float) -> float:
    """The nearest error ratio a whole number of requests per minute can produce."""
    return round(share * REQUESTS_PER_MINUTE) / REQUESTS_PER_MINUTE


def slo_traffic(
    objective: Objective, phases: Sequence[tuple[float, int]], user_share: float = 0
) -> tuple[InputSeries, ...]:
    """Requests at REQUESTS_PER_MINUTE with error ratio `ratio` per (ratio, minutes) phase."""
    labels = {"endpoint": ENDPOINT, **MODEL, "tenant": "acme"}
    total = REQUESTS_PER_MINUTE
    if isinstance(objective, AvailabilitySlo):
        user = round(total * user_share)
        series = [
            (objective.good_outcomes[0], [(total - user - round(total * r), m) for r, m in phases]),
            (objective.bad_outcomes[0], [(round(total * r), m) for r, m in phases]),
        ]
        if user:
            series.append((_user_mistake(objective), [(user, m) for _, m in phases]))
        return tuple(
            InputSeries(
                selector("servewatch_requests_total", {**labels, "outcome": outcome}),
                counter(*segments),
            )
            for outcome, segments in series
        )
    bucket = {**labels, "le": le(objective.threshold_seconds)}
    return (
        InputSeries(
            selector("servewatch_request_duration_seconds_bucket", bucket),
            counter(*[(total - round(total * r), m) for r, m in phases]),
        ),
        InputSeries(
            selector("servewatch_request_duration_seconds_count", labels),
            counter(*[(total, m) for _, m in phases]),
        ),
    )


def _user_mistake(objective: AvailabilitySlo) -> str:
    counted = set(objective.good_outcomes + objective.bad_outcomes)
    return next(o for o in OUTCOMES if o not in counted)


def burn_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    cases = []
    for objective in spec.slo.objectives:
        budget = 1 - objective.objective
        alerts = []
        for burn in spec.slo.burn_alerts:
            alert = rules[burn_alert_name(spec.slo, objective, burn)]
            alerts.append(alert)
            cases += _burn_cases(objective, burn, alert, budget)
        if isinstance(objective, AvailabilitySlo):
            minutes = max(duration_seconds(b.for_) // 60 for b in spec.slo.burn_alerts) + 10
            cases.append(
                Case(
                    f"{objective.name}: user mistakes do not burn the budget",
                    slo_traffic(objective, [(0, minutes)], user_share=0.5),
                    tuple(Check(alert, minutes) for alert in alerts),
                )
            )
    return cases


def _burn_cases(
    objective: Objective, burn: BurnAlert, alert: AlertRule, budget: float
) -> list[Case]:
    lowest = min(pair.factor for pair in burn.windows)
    highest = max(pair.factor for pair in burn.windows)
    longest_short = max(duration_seconds(pair.short) // 60 for pair in burn.windows)
    minutes = duration_seconds(burn.for_) // 60 + 10
    above, below, burst = (
        exact_ratio(f * budget) for f in (1.2 * lowest, 0.8 * lowest, 1.2 * highest)
    )
    if not below < lowest * budget < above:
        raise ValueError(f"{REQUESTS_PER_MINUTE} requests a minute cannot straddle {alert.name}")
    labels = {"endpoint": ENDPOINT}
    return [
        Case(
            f"{alert.name} fires at 1.2x its lowest burn factor",
            slo_traffic(objective, [(above, minutes)]),
            (Check(alert, minutes, (Firing(labels, above),)),),
        ),
        Case(
            f"{alert.name} stays quiet at 0.8x its lowest burn factor",
            slo_traffic(objective, [(below, minutes)]),
            (Check(alert, minutes),),
        ),
        Case(
            f"{alert.name} resolves once the short windows are clean, the long ones still burnt",
            slo_traffic(objective, [(burst, minutes), (0, longest_short + 5)]),
            (
                Check(alert, minutes, (Firing(labels, burst),)),
                Check(alert, minutes + longest_short + 5),
            ),
        ),
    ]


# --- model quality ---------------------------------------------------------------------------


def _monitor_series(
    monitor: str,
    labels: Mapping[str, str],
    status: str,
    value: float | str,
    minutes: int,
    metric: str = "psi",
) -> tuple[InputSeries, ...]:
    """A monitor key's status and value gauges (`value` a number held throughout, or a series)."""
    key = {"monitor": monitor, "metric": metric, **labels}
    values = value if isinstance(value, str) else gauge((value, minutes))
    return (
        InputSeries(selector("servewatch_monitor_status", key), status),
        InputSeries(selector("servewatch_monitor_value", key), values),
    )


# A model version drifting during a platform incident, one without any request metrics.
INCIDENT_MODEL = {"model_name": "ticket_classifier", "model_version": "2"}
QUIET_MODEL = {"model_name": "risk_scorer", "model_version": "1"}
PLATFORM_REQUESTS = 1000  # a minute, per model version


def platform_series(
    spec: AlertSpec, model: Mapping[str, str], healthy: bool, minutes: int
) -> tuple[InputSeries, ...]:
    """Requests of a model version: all fast and answered, or slow, failing and shed."""
    errors = spec.objective(spec.triage.errors)
    assert isinstance(errors, AvailabilitySlo)
    total = PLATFORM_REQUESTS
    bad, shed = (0, 0) if healthy else (total // 10, total // 20)
    labels = {"endpoint": ENDPOINT, **model, "tenant": "acme"}
    outcomes = {
        errors.good_outcomes[0]: total - bad - shed,
        errors.bad_outcomes[0]: bad,
        spec.triage.shed_outcome: shed,
    }
    # Outcomes that never happened have no series at all, as in the service's /metrics.
    series = [
        InputSeries(
            selector("servewatch_requests_total", {**labels, "outcome": outcome}),
            counter((count, minutes)),
        )
        for outcome, count in outcomes.items()
        if count
    ]
    # Healthy: every request within 0.1 s. Incident: 40% between 0.5 s and 1 s (p99 ≈ 1 s).
    fast = total if healthy else total // 2
    within = {0.1: fast, 0.5: fast + (total - fast) // 5, 1.0: total, float("inf"): total}
    series += [
        InputSeries(
            selector("servewatch_request_duration_seconds_bucket", {**labels, "le": le(bound)}),
            counter((count, minutes)),
        )
        for bound, count in within.items()
    ]
    return tuple(series)


def _drift_firing(
    spec: AlertSpec,
    config: AppConfig,
    entry: DriftAlert,
    labels: Mapping[str, str],
    value: float,
    platform: str,
    insufficient: bool = False,
) -> Firing:
    """A drift alert for `labels`, its platform signals `healthy`, `unhealthy` or `unknown`."""
    fired = {"metric": "psi", **labels}
    window = monitor_window(config.monitors.schedules, entry.monitor)
    found = {q for signal in signals(spec, window) for q in signal.found(fired, platform)}
    if insufficient:
        key = [fired[label] for label in ("metric", "model_name", "model_version", "tenant")]
        found.add(templating.sprintf(insufficient_query(entry), key))
    return Firing(fired, value, frozenset(found))


def drift_cases(spec: AlertSpec, rules: Mapping[str, AlertRule], config: AppConfig) -> list[Case]:
    cases = []
    for entry in spec.drift:
        alert = rules[entry.alert]
        hold = duration_seconds(entry.for_) // 60
        minutes = hold + 10
        level = STATUS_CODES[entry.status]
        sustained = gauge((level, minutes))

        def key(model: Mapping[str, str], tenant: str) -> dict[str, str]:
            return {**model, "tenant": tenant}

        judged = (
            *_monitor_series(entry.monitor, key(MODEL, "acme"), sustained, 0.3, minutes),
            *_monitor_series(entry.monitor, key(INCIDENT_MODEL, "globex"), sustained, 0.4, minutes),
            *_monitor_series(entry.monitor, key(QUIET_MODEL, "*"), sustained, 0.5, minutes),
        )
        platform = (
            *platform_series(spec, MODEL, True, minutes),
            *platform_series(spec, INCIDENT_MODEL, False, minutes),
        )
        lower = _monitor_series(
            entry.monitor, key(MODEL, "globex"), gauge((level - 1, minutes)), 0.15, minutes
        )
        brief = _monitor_series(
            entry.monitor,
            key(MODEL, "initech"),
            gauge((level, hold - 5), (0, minutes - hold + 5)),
            0.3,
            minutes,
        )
        firing = (
            _drift_firing(spec, config, entry, key(MODEL, "acme"), 0.3, "healthy"),
            _drift_firing(spec, config, entry, key(INCIDENT_MODEL, "globex"), 0.4, "unhealthy"),
            _drift_firing(spec, config, entry, key(QUIET_MODEL, "*"), 0.5, "unknown"),
        )
        cases += [
            Case(
                f"{alert.name} fires for each key judged at {entry.status} level and says "
                "whether the platform was healthy",
                (*judged, *platform, *lower),
                (Check(alert, minutes, firing),),
            ),
            Case(
                f"{alert.name} stays quiet for a lower status or a spell shorter than {entry.for_}",
                lower + brief,
                (Check(alert, minutes),),
            ),
            _insufficient_case(spec, config, entry, alert),
        ]
    return cases


def _insufficient_case(
    spec: AlertSpec, config: AppConfig, entry: DriftAlert, alert: AlertRule
) -> Case:
    """Once firing, the alert holds through insufficient data; a judged window clears it."""
    hold = duration_seconds(entry.for_) // 60
    level, lacking = STATUS_CODES[entry.status], STATUS_CODES["insufficient_data"]
    minutes = hold + 15
    then = minutes - hold - 5
    # The value gauge goes missing with the data (longer than the 5-minute lookback).
    value = f"0.3+0x{hold + 4} _x{then}"
    held = {**MODEL, "tenant": "acme"}
    cleared = {**MODEL, "tenant": "initech"}
    pending = {**MODEL, "tenant": "globex"}
    series = (
        *_monitor_series(entry.monitor, held, gauge((level, hold + 5), (lacking, then)), value, 0),
        *_monitor_series(entry.monitor, cleared, gauge((level, hold + 5), (0, then)), 0.3, minutes),
        *_monitor_series(
            entry.monitor, pending, gauge((level, hold - 5), (lacking, minutes - hold + 5)), 0.3, 0
        ),
    )
    return Case(
        f"{alert.name} holds through insufficient data once firing, not while pending, and a "
        "judged window clears it",
        series,
        (
            Check(
                alert,
                hold + 4,
                tuple(
                    _drift_firing(spec, config, entry, labels, 0.3, "unknown")
                    for labels in (held, cleared)
                ),
            ),
            Check(
                alert,
                minutes,
                (_drift_firing(spec, config, entry, held, 0.3, "unknown", insufficient=True),),
            ),
        ),
    )


def traffic_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry: MonitorAlert = spec.traffic
    alert = rules[entry.alert]
    hold = duration_seconds(entry.for_) // 60
    minutes = hold + 10
    level = STATUS_CODES[entry.status]
    metric = "volume_drop"

    def key_of(tenant: str) -> dict[str, str]:
        return {**MODEL, "tenant": tenant}

    def key(tenant: str, status: str, value: float) -> tuple[InputSeries, ...]:
        return _monitor_series(entry.monitor, key_of(tenant), status, value, minutes, metric)

    stopped = key("acme", gauge((level, minutes)), 0.95)
    lower = key("globex", gauge((level - 1, minutes)), 0.6)
    brief = key("initech", gauge((level, hold - 5), (0, minutes - hold + 5)), 0.95)
    return [
        Case(
            f"{alert.name} fires for the key whose traffic fell below its usual rate",
            stopped + lower,
            (
                Check(
                    alert, minutes, (Firing({"metric": metric, **MODEL, "tenant": "acme"}, 0.95),)
                ),
            ),
        ),
        Case(
            f"{alert.name} stays quiet for a smaller drop or a spell shorter than {entry.for_}",
            lower + brief,
            (Check(alert, minutes),),
        ),
    ]


def schema_failure_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.output_schema
    alert = rules[entry.alert]
    minutes = duration_seconds(entry.window) // 60 + duration_seconds(entry.for_) // 60 + 5
    broken = {"model_name": "risk_scorer", "model_version": "1"}

    def outputs(model: Mapping[str, str], failures: float, good: float) -> list[InputSeries]:
        series = [
            InputSeries(
                selector(
                    "servewatch_output_schema_failures_total", {**model, "reason": "non_finite"}
                ),
                counter((failures, minutes)),
            )
        ]
        if good:
            series.append(
                InputSeries(
                    selector("servewatch_prediction_confidence_count", {**model, "tenant": "acme"}),
                    counter((good, minutes)),
                )
            )
        return series

    above, below = 2 * entry.ratio, entry.ratio / 2
    return [
        Case(
            f"{alert.name} fires above the ratio, and when every output broke",
            (*outputs(MODEL, 100 * above, 100 * (1 - above)), *outputs(broken, 5, 0)),
            (Check(alert, minutes, (Firing(MODEL, above), Firing(broken, 1.0))),),
        ),
        Case(
            f"{alert.name} stays quiet below the ratio",
            tuple(outputs(MODEL, 100 * below, 100 * (1 - below))),
            (Check(alert, minutes),),
        ),
    ]


# --- data path -------------------------------------------------------------------------------


def prediction_log_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    log = spec.prediction_log
    dropped, spill, lag = (rules[a.alert] for a in (log.dropped, log.spill_backlog, log.replay_lag))
    window = duration_seconds(log.dropped.window) // 60
    records = {"dropped": selector("servewatch_prediction_log_records_total", {"event": "dropped"})}
    backlog = "servewatch_prediction_log_spill_backlog"
    hold = duration_seconds(log.spill_backlog.for_) // 60
    spilled = log.spill_backlog.records + 500
    lag_limit = duration_seconds(log.replay_lag.lag)
    lag_minutes = lag_limit // 60 + duration_seconds(log.replay_lag.for_) // 60 + 5
    return [
        Case(
            f"{dropped.name} fires on any dropped record and stays quiet without",
            (InputSeries(records["dropped"], counter((0, window * 2), (2, window * 2))),),
            (Check(dropped, window * 2), Check(dropped, window * 4, (Firing({}, 2 * window),))),
        ),
        Case(
            f"{spill.name} fires on a backlog that does not drain",
            (InputSeries(selector(backlog, SERVICE_TARGET), gauge((spilled, hold + 10))),),
            (Check(spill, hold + 10, (Firing({}, spilled),)),),
        ),
        Case(
            f"{spill.name} stays quiet when the backlog drains within {log.spill_backlog.for_}",
            (
                InputSeries(
                    selector(backlog, SERVICE_TARGET),
                    gauge((spilled, hold - 5), (log.spill_backlog.records, 15)),
                ),
            ),
            (Check(spill, hold + 10),),
        ),
        Case(
            f"{lag.name} fires when the oldest spilled record ages past {log.replay_lag.lag}",
            (
                InputSeries(
                    selector("servewatch_prediction_log_replay_lag_seconds", SERVICE_TARGET),
                    counter((60, lag_minutes)),
                ),
            ),
            (
                Check(lag, lag_limit // 60),
                Check(lag, lag_minutes, (Firing({}, 60.0 * lag_minutes),)),
            ),
        ),
    ]


def staleness_cases(
    spec: AlertSpec, rules: Mapping[str, AlertRule], schedules: Mapping[str, MonitorSchedule]
) -> list[Case]:
    alert = rules[spec.monitor_staleness.alert]
    limits = {m: spec.monitor_staleness.missed_runs * s.every_seconds for m, s in schedules.items()}
    quickest = min(limits, key=lambda m: (limits[m], m))
    minutes = limits[quickest] // 60 + 10

    def last_success(monitor: str, values: str) -> InputSeries:
        labels = {"monitor": monitor, **MONITORS_TARGET}
        return InputSeries(
            selector("servewatch_monitor_last_success_timestamp_seconds", labels), values
        )

    # Monitors with a longer limit stay silent too: only their own limit may flag them.
    others = [
        last_success(m, gauge((0, minutes)) if limits[m] > 60 * minutes else counter((60, minutes)))
        for m in sorted(limits)
        if m != quickest
    ]
    return [
        Case(
            f"{alert.name} fires for a monitor silent for {spec.monitor_staleness.missed_runs} "
            "of its intervals, not for one silent within its own limit",
            (last_success(quickest, gauge((0, minutes))), *others),
            (Check(alert, minutes, (Firing({"monitor": quickest}, 60.0 * minutes),)),),
        ),
        Case(
            f"{alert.name} stays quiet while every monitor succeeds",
            tuple(last_success(m, counter((60, minutes))) for m in sorted(limits)),
            (Check(alert, minutes),),
        ),
    ]


def results_staleness_cases(
    spec: AlertSpec, rules: Mapping[str, AlertRule], config: AppConfig
) -> list[Case]:
    """Each monitor is held to its own exported schedule, whatever the config says."""
    entry = spec.results_staleness
    alert = rules[entry.alert]
    quick, slow = sorted(config.monitors.schedules)[:2]
    every = {quick: 300, slow: 3600}
    minutes = entry.missed_runs * every[quick] // 60 + 5

    def monitor(name: str, last_run: str) -> tuple[InputSeries, ...]:
        labels = {"monitor": name, **MONITORS_TARGET}
        return (
            InputSeries(
                selector("servewatch_monitor_last_run_timestamp_seconds", labels), last_run
            ),
            InputSeries(
                selector("servewatch_monitor_schedule_seconds", labels),
                gauge((every[name], minutes)),
            ),
        )

    return [
        Case(
            f"{alert.name} fires for results older than {entry.missed_runs} of the monitor's "
            "exported intervals, not for older ones within theirs",
            (*monitor(quick, gauge((0, minutes))), *monitor(slow, gauge((0, minutes)))),
            (Check(alert, minutes, (Firing({"monitor": quick}, 60.0 * minutes),)),),
        ),
        Case(
            f"{alert.name} stays quiet while the results are fresh",
            (*monitor(quick, counter((60, minutes))), *monitor(slow, counter((60, minutes)))),
            (Check(alert, minutes),),
        ),
    ]


def target_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    cases = []
    targets = {"servewatch-service": SERVICE_TARGET, "servewatch-monitors": MONITORS_TARGET}
    for entry in spec.targets:
        alert = rules[entry.alert]
        target = targets.get(entry.job, {"job": entry.job, "instance": f"{entry.job}:80"})
        others = [
            InputSeries(selector("up", t), gauge((1, 20)))
            for j, t in targets.items()
            if j != entry.job
        ]
        minutes = duration_seconds(entry.for_) // 60 + 5
        up = selector("up", target)
        cases += [
            Case(
                f"{alert.name} fires when the target is down",
                (InputSeries(up, gauge((0, minutes))), *others),
                (Check(alert, minutes, (Firing(target, 0),)),),
            ),
            Case(
                f"{alert.name} fires when the job has no target",
                tuple(others) or (InputSeries(selector("up", {"job": "other"}), gauge((1, 20))),),
                (Check(alert, minutes, (Firing({"job": entry.job}, 1),)),),
            ),
            Case(
                f"{alert.name} stays quiet while the target is up",
                (InputSeries(up, gauge((1, minutes))), *others),
                (Check(alert, minutes),),
            ),
        ]
    return cases


# --- FinOps ----------------------------------------------------------------------------------


def budget_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    levels = sorted(spec.budget, key=lambda level: level.share)
    budget = 10.0
    spends = [0.5 * levels[0].share, *(level.share + 0.05 for level in levels)]

    def week(tenant: str, spent: float) -> tuple[InputSeries, ...]:
        labels = {"tenant": tenant, **MONITORS_TARGET}
        return (
            InputSeries(
                selector("servewatch_tenant_week_cost_usd", labels), gauge((spent * budget, 10))
            ),
            InputSeries(
                selector("servewatch_tenant_weekly_budget_usd", labels), gauge((budget, 10))
            ),
        )

    tenants = [f"tenant{index}" for index in range(len(spends))]
    series = tuple(
        s for tenant, spent in zip(tenants, spends, strict=True) for s in week(tenant, spent)
    )
    checks = tuple(
        Check(rules[level.alert], 5, (Firing({"tenant": tenants[i + 1]}, spends[i + 1]),))
        for i, level in enumerate(levels)
    )
    return [
        Case(
            "each budget level fires for the tenant in its band only",
            series,
            checks,
        ),
        Case(
            "no budget alert below the lowest level",
            week(tenants[0], spends[0]),
            tuple(Check(rules[level.alert], 5) for level in levels),
        ),
    ]


# --- canary ----------------------------------------------------------------------------------

CANDIDATE = {"model_name": "ticket_classifier", "model_version": "4"}
BASELINE = MODEL


def rollout_weights(
    endpoint: str,
    candidate_weight: float,
    minutes: int,
    candidate: Mapping[str, str] = CANDIDATE,
    baseline: Mapping[str, str] = BASELINE,
) -> tuple[InputSeries, ...]:
    """The weight gauges of a rollout on `endpoint`: the candidate's and the baseline's."""
    return tuple(
        InputSeries(
            selector("servewatch_rollout_weight", {"endpoint": endpoint, **model, "role": role}),
            gauge((weight, minutes)),
        )
        for model, role, weight in (
            (candidate, "candidate", candidate_weight),
            (baseline, "baseline", 100 - candidate_weight),
        )
    )


def version_requests(
    spec: AlertSpec,
    endpoint: str,
    model: Mapping[str, str],
    per_minute: int,
    error_share: float,
    minutes: int,
    bucket: tuple[float, float] = (0.05, 0.1),
) -> tuple[InputSeries, ...]:
    """A version's requests on `endpoint`: `error_share` server errors, all within `bucket`."""
    errors = spec.objective(spec.triage.errors)
    assert isinstance(errors, AvailabilitySlo)
    labels = {"endpoint": endpoint, **model, "tenant": "acme"}
    bad = round(per_minute * error_share)
    outcomes = {errors.good_outcomes[0]: per_minute - bad, errors.bad_outcomes[0]: bad}
    series = [
        InputSeries(
            selector("servewatch_requests_total", {**labels, "outcome": outcome}),
            counter((count, minutes)),
        )
        for outcome, count in outcomes.items()
        if count
    ]
    lower, upper = bucket
    within = {lower: 0, upper: per_minute, float("inf"): per_minute}
    series += [
        InputSeries(
            selector("servewatch_request_duration_seconds_bucket", {**labels, "le": le(bound)}),
            counter((count, minutes)),
        )
        for bound, count in within.items()
    ]
    return tuple(series)


def version_confidence(
    model: Mapping[str, str], per_minute: int, mean: float, minutes: int
) -> tuple[InputSeries, ...]:
    """A version's predictions with mean confidence `mean`."""
    labels = {**model, "tenant": "acme"}
    name = "servewatch_prediction_confidence"
    return (
        InputSeries(selector(f"{name}_count", labels), counter((per_minute, minutes))),
        InputSeries(selector(f"{name}_sum", labels), counter((per_minute * mean, minutes))),
    )


def _canary_minutes(spec: AlertSpec, entry: Alert) -> int:
    return duration_seconds(spec.canary.window) // 60 + duration_seconds(entry.for_) // 60 + 5


def _canary_per_minute(spec: AlertSpec) -> tuple[int, int]:
    """Requests a minute of a canary with enough of them over the window, and of one without."""
    window = duration_seconds(spec.canary.window) // 60
    enough = -(-2 * spec.canary.min_requests // window)
    return enough, max(1, spec.canary.min_requests // (2 * window))


def canary_errors_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.canary.errors
    alert = rules[entry.alert]
    minutes = _canary_minutes(spec, entry)
    enough, few = _canary_per_minute(spec)
    base_share = 0.01
    limit = entry.factor * base_share + entry.margin
    worse, within = exact_ratio(2 * limit), exact_ratio(0.5 * limit)

    def endpoint(name: str, weight: float, per_minute: int, share: float) -> list[InputSeries]:
        return [
            *rollout_weights(name, weight, minutes),
            *version_requests(spec, name, CANDIDATE, per_minute, share, minutes),
            *version_requests(spec, name, BASELINE, 10 * per_minute, base_share, minutes),
        ]

    fires = {"endpoint": "classify_ticket", **CANDIDATE}
    return [
        Case(
            f"{alert.name} fires for a canary in force above {number(entry.factor)}x its "
            "baseline's error ratio, not for one within it",
            (
                *endpoint("classify_ticket", 25, 10 * enough, worse),
                *endpoint("classify_tickets", 25, 10 * enough, within),
            ),
            (Check(alert, minutes, (Firing(fires, worse),)),),
        ),
        Case(
            f"{alert.name} stays quiet for a promoted canary, an ended rollout and a canary "
            f"with fewer than {spec.canary.min_requests} requests over {spec.canary.window}",
            (
                *endpoint("classify_ticket", 100, 10 * enough, worse),
                *endpoint("classify_tickets", 0, 10 * enough, worse),
                # Half its few requests fail: only their number keeps it quiet.
                *endpoint("predict_risk", 5, few, 0.5),
            ),
            (Check(alert, minutes),),
        ),
    ]


def canary_latency_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.canary.latency
    alert = rules[entry.alert]
    minutes = _canary_minutes(spec, entry)
    enough, _ = _canary_per_minute(spec)
    floor = entry.floor_seconds
    # All baseline requests within (floor / 4, floor / 2]; the canary's ten times slower, or
    # within (floor / 2, floor]: slower than the factor allows, but under the floor.
    base, slow, quick = (floor / 4, floor / 2), (2.5 * floor, 5 * floor), (floor / 2, floor)

    def endpoint(name: str, weight: float, bucket: tuple[float, float]) -> list[InputSeries]:
        return [
            *rollout_weights(name, weight, minutes),
            *version_requests(spec, name, CANDIDATE, enough, 0, minutes, bucket),
            *version_requests(spec, name, BASELINE, 3 * enough, 0, minutes, base),
        ]

    p = entry.quantile
    slow_quantile = slow[0] + p * (slow[1] - slow[0])
    fires = {"endpoint": "classify_ticket", **CANDIDATE}
    return [
        Case(
            f"{alert.name} fires for a canary slower than {number(entry.factor)}x its "
            f"baseline and {number(floor)}s, not for one under {number(floor)}s",
            (*endpoint("classify_ticket", 25, slow), *endpoint("classify_tickets", 25, quick)),
            (Check(alert, minutes, (Firing(fires, slow_quantile),)),),
        ),
        Case(
            f"{alert.name} stays quiet once the rollout is promoted or ended",
            (*endpoint("classify_ticket", 100, slow), *endpoint("classify_tickets", 0, slow)),
            (Check(alert, minutes),),
        ),
    ]


def canary_drift_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.canary.drift
    alert = rules[entry.alert]
    minutes = _canary_minutes(spec, entry)
    enough, few = _canary_per_minute(spec)
    base_mean, drop = 0.9, 2 * entry.confidence_drop
    other = {"model_name": "risk_scorer", "model_version": "2"}
    other_baseline = {"model_name": "risk_scorer", "model_version": "1"}

    def versions(candidate_mean: float, per_minute: int) -> list[InputSeries]:
        return [
            *version_confidence(CANDIDATE, per_minute, candidate_mean, minutes),
            *version_confidence(BASELINE, 3 * enough, base_mean, minutes),
        ]

    fires = {"endpoint": "classify_ticket", **CANDIDATE}
    return [
        Case(
            f"{alert.name} fires for a canary whose mean confidence is more than "
            f"{number(entry.confidence_drop)} below its baseline's, not for one within it",
            (
                *rollout_weights("classify_ticket", 25, minutes),
                *versions(base_mean - drop, enough),
                *rollout_weights("predict_risk", 25, minutes, other, other_baseline),
                *version_confidence(other, enough, base_mean - entry.confidence_drop / 2, minutes),
                *version_confidence(other_baseline, enough, base_mean, minutes),
            ),
            (Check(alert, minutes, (Firing(fires, drop),)),),
        ),
        Case(
            f"{alert.name} stays quiet once the rollout is promoted",
            (
                *rollout_weights("classify_ticket", 100, minutes),
                *versions(base_mean - drop, enough),
            ),
            (Check(alert, minutes),),
        ),
        Case(
            f"{alert.name} stays quiet for a canary with fewer than "
            f"{spec.canary.min_requests} predictions over {spec.canary.window}",
            (*rollout_weights("classify_ticket", 5, minutes), *versions(base_mean - drop, few)),
            (Check(alert, minutes),),
        ),
    ]


# --- model services (split topology) --------------------------------------------------------

RISK = {"model_name": "risk_scorer", "model_version": "1"}
CALLS_PER_MINUTE = 1000


def model_calls(
    service: str,
    model: Mapping[str, str],
    minutes: int,
    failed: Mapping[str, int] | None = None,
    bucket: tuple[float, float] = (0.005, 0.01),
) -> tuple[InputSeries, ...]:
    """The gateway's calls to `service`: CALLS_PER_MINUTE a minute, all timed within `bucket`
    (failed ones too), `failed[reason]` of them failing for that reason."""
    labels = {"service": service, **model}
    lower, upper = bucket
    within = {lower: 0, upper: CALLS_PER_MINUTE, float("inf"): CALLS_PER_MINUTE}
    series = [
        InputSeries(
            selector(f"{CALLS}_bucket", {**labels, "le": le(bound)}), counter((count, minutes))
        )
        for bound, count in within.items()
    ]
    series.append(
        InputSeries(selector(f"{CALLS}_count", labels), counter((CALLS_PER_MINUTE, minutes)))
    )
    series += [
        InputSeries(
            selector(ERRORS, {"service": service, "model_name": model["model_name"], "reason": r}),
            counter((count, minutes)),
        )
        for r, count in (failed or {}).items()
    ]
    return tuple(series)


def _hop_minutes(spec: AlertSpec, entry: Alert) -> int:
    return (
        duration_seconds(spec.model_services.window) // 60 + duration_seconds(entry.for_) // 60 + 5
    )


def model_call_error_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.model_services.errors
    alert = rules[entry.alert]
    minutes = _hop_minutes(spec, entry)
    worse = round(2 * entry.ratio * CALLS_PER_MINUTE)
    within = round(entry.ratio * CALLS_PER_MINUTE / 2)
    # The failures of the service above the ratio split over two reasons: the ratio sums them.
    split = {"model_error": worse // 2, "overloaded": worse - worse // 2}
    fires = {"service": "ticket", "model_name": MODEL["model_name"]}
    return [
        Case(
            f"{alert.name} fires for a model service failing more than "
            f"{percent(entry.ratio)} of its calls, whatever the reasons, not for one within it",
            (
                *model_calls("ticket", MODEL, minutes, split),
                *model_calls("risk", RISK, minutes, {"timeout": within}),
            ),
            (Check(alert, minutes, (Firing(fires, worse / CALLS_PER_MINUTE),)),),
        ),
        Case(
            f"{alert.name} stays quiet while calls succeed",
            (*model_calls("ticket", MODEL, minutes), *model_calls("risk", RISK, minutes)),
            (Check(alert, minutes),),
        ),
    ]


def model_service_down_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.model_services.down
    alert = rules[entry.alert]
    minutes = _hop_minutes(spec, entry)
    down = round(min(1.0, 1.2 * entry.ratio) * CALLS_PER_MINUTE)
    partly = round(0.8 * entry.ratio * CALLS_PER_MINUTE)
    others = [r for r in MODEL_CALL_ERROR_REASONS if r not in entry.reasons]
    # Split over the reasons that count; the other reasons do not count, however many.
    share, extra = divmod(down, len(entry.reasons))
    unreachable = {r: share + (i < extra) for i, r in enumerate(entry.reasons)}
    partly_down = {entry.reasons[0]: partly, **({others[0]: 400} if others else {})}
    return [
        Case(
            f"{alert.name} fires for a model service at least {percent(entry.ratio)} of whose "
            f"calls failed as {' or '.join(entry.reasons)}, not for one failing otherwise",
            (
                *model_calls("ticket", MODEL, minutes, unreachable),
                *model_calls("risk", RISK, minutes, partly_down),
            ),
            (Check(alert, minutes, (Firing({"service": "ticket"}, down / CALLS_PER_MINUTE),)),),
        ),
        Case(
            f"{alert.name} stays quiet below {percent(entry.ratio)} of the calls",
            tuple(model_calls("ticket", MODEL, minutes, {entry.reasons[0]: partly})),
            (Check(alert, minutes),),
        ),
    ]


def model_service_slow_cases(spec: AlertSpec, rules: Mapping[str, AlertRule]) -> list[Case]:
    entry = spec.model_services.slow
    alert = rules[entry.alert]
    minutes = _hop_minutes(spec, entry)
    bounds = (0.0, *LATENCY_BUCKETS)
    # The bucket just above the threshold, and the one just below it.
    i = next(i for i, b in enumerate(bounds) if b >= entry.threshold_seconds)
    slow, quick = (bounds[i], bounds[i + 1]), (bounds[i - 1], bounds[i])
    if bounds[i] != entry.threshold_seconds:
        quick = (bounds[i - 2], bounds[i - 1])
    value = slow[0] + entry.quantile * (slow[1] - slow[0])
    fires = {"service": "ticket", "model_name": MODEL["model_name"]}
    return [
        Case(
            f"{alert.name} fires for a model service slower than "
            f"{number(entry.threshold_seconds)}s at the quantile, not for one under it",
            (
                *model_calls("ticket", MODEL, minutes, bucket=slow),
                *model_calls("risk", RISK, minutes, bucket=quick),
            ),
            (Check(alert, minutes, (Firing(fires, value),)),),
        ),
        Case(
            f"{alert.name} stays quiet while calls answer within "
            f"{number(entry.threshold_seconds)}s",
            tuple(model_calls("ticket", MODEL, minutes, bucket=quick)),
            (Check(alert, minutes),),
        ),
    ]


def all_cases(spec: AlertSpec, alerts: Sequence[AlertRule], config: AppConfig) -> list[Case]:
    """Every case, grouped by the part of the spec it exercises."""
    rules = {alert.name: alert for alert in alerts}
    return [
        *burn_cases(spec, rules),
        *drift_cases(spec, rules, config),
        *traffic_cases(spec, rules),
        *schema_failure_cases(spec, rules),
        *prediction_log_cases(spec, rules),
        *staleness_cases(spec, rules, config.monitors.schedules),
        *results_staleness_cases(spec, rules, config),
        *target_cases(spec, rules),
        *budget_cases(spec, rules),
        *canary_errors_cases(spec, rules),
        *canary_latency_cases(spec, rules),
        *canary_drift_cases(spec, rules),
        *model_call_error_cases(spec, rules),
        *model_service_down_cases(spec, rules),
        *model_service_slow_cases(spec, rules),
    ]
