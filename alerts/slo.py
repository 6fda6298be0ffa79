"""SLO recording rules and multi-window, multi-burn-rate alerts (the sloth model)."""

from __future__ import annotations

from alerts.promql import le, one_of
from alerts.rules import AlertRule, RecordingRule, RuleGroup
from alerts.spec import (
    AvailabilitySlo,
    BurnAlert,
    LatencySlo,
    SloSpec,
    burn_alert_name,
    duration_seconds,
)

# SLOs hold per business endpoint: one endpoint failing must not hide behind the others.
LEVEL = "endpoint"
Objective = AvailabilitySlo | LatencySlo


def number(value: float) -> str:
    """A float as PromQL and humans read it (14.4, 6, 0.995)."""
    return format(value, ".10g")


def percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def windows(slo: SloSpec) -> list[str]:
    """Every window some burn alert reads, shortest first."""
    found = {
        w for burn in slo.burn_alerts for pair in burn.windows for w in (pair.long, pair.short)
    }
    return sorted(found, key=duration_seconds)


def ratio_series(objective: Objective, window: str) -> str:
    """The recorded error ratio of `objective` over `window`."""
    return f"{LEVEL}:servewatch_slo_{objective.name}_errors:ratio_rate{window}"


def error_ratio(objective: Objective, window: str, by: str = LEVEL) -> str:
    """Share of requests that broke the objective over `window`, per endpoint (or `by`)."""
    if isinstance(objective, AvailabilitySlo):
        bad = one_of(objective.bad_outcomes)
        valid = one_of(objective.good_outcomes + objective.bad_outcomes)
        return zero_if_none(
            f'sum by ({by}) (rate(servewatch_requests_total{{outcome=~"{bad}"}}[{window}]))',
            f'sum by ({by}) (rate(servewatch_requests_total{{outcome=~"{valid}"}}[{window}]))',
        )
    bound = le(objective.threshold_seconds)
    return (
        f"1 - (\n"
        f"  sum by ({by}) "
        f'(rate(servewatch_request_duration_seconds_bucket{{le="{bound}"}}[{window}]))\n'
        f"  /\n"
        f"  sum by ({by}) (rate(servewatch_request_duration_seconds_count[{window}]))\n"
        f")"
    )


def zero_if_none(part: str, whole: str) -> str:
    """part / whole, where `whole` has traffic but `part` never happened (no series yet) is 0."""
    return f"(\n  {part}\n  or\n  0 * {whole}\n)\n/\n{whole}"


def recording_group(slo: SloSpec, objective: Objective) -> RuleGroup:
    """The error ratio of one SLO over every window the burn alerts need."""
    rules = tuple(
        RecordingRule(ratio_series(objective, w), error_ratio(objective, w)) for w in windows(slo)
    )
    return RuleGroup(f"servewatch-slo-{objective.name}-ratios", rules)


def burn_expr(objective: Objective, burn: BurnAlert) -> str:
    """Any window pair whose long and short ratios both exceed factor × error budget."""
    pairs = []
    for pair in burn.windows:
        limit = f"({number(pair.factor)} * (1 - {number(objective.objective)}))"
        pairs.append(
            "(\n"
            f"  {ratio_series(objective, pair.long)} > {limit}\n"
            "  and\n"
            f"  {ratio_series(objective, pair.short)} > {limit}\n"
            ")"
        )
    return "\nor\n".join(pairs)


def burn_alert(slo: SloSpec, objective: Objective, burn: BurnAlert, runbook: str) -> AlertRule:
    """The burn alert of one SLO at one urgency."""
    name = burn_alert_name(slo, objective, burn)
    speed = "fast" if burn.severity == "critical" else "slowly"
    pairs = ", ".join(f"{number(p.factor)}x over {p.long} and {p.short}" for p in burn.windows)
    budget = percent(1 - objective.objective)
    return AlertRule(
        name=name,
        expr=burn_expr(objective, burn),
        severity=burn.severity,
        for_=burn.for_,
        labels={"slo": objective.name},
        summary=(
            f"Endpoint {{{{ $labels.endpoint }}}} is burning its {objective.name} "
            f"error budget {speed}."
        ),
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the requests to "
            f"{{{{ $labels.endpoint }}}} {_breach(objective)} over the long window of a burn "
            f"pair ({pairs}); the {percent(objective.objective)} objective allows {budget} "
            f"over {slo.period}."
        ),
        runbook_url=f"{runbook}#{name.lower()}",
    )


def _breach(objective: Objective) -> str:
    if isinstance(objective, AvailabilitySlo):
        return f"failed with a server-side error ({', '.join(objective.bad_outcomes)})"
    return f"took longer than {number(objective.threshold_seconds)}s"


def slo_groups(slo: SloSpec, runbook: str) -> list[RuleGroup]:
    """Recording groups of every SLO, then one group with their burn alerts."""
    groups = [recording_group(slo, objective) for objective in slo.objectives]
    alerts = tuple(
        burn_alert(slo, objective, burn, runbook)
        for objective in slo.objectives
        for burn in slo.burn_alerts
    )
    return [*groups, RuleGroup("servewatch-slo-alerts", alerts)]
