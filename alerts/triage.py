"""Triage: a model version's platform signals, and the description clause that says whether they
were healthy over a drift monitor's window (an infrastructure incident, or a model regression?).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts import templating
from alerts.rules import RecordingRule, RuleGroup
from alerts.slo import error_ratio, number, percent, zero_if_none
from alerts.spec import AlertSpec, AvailabilitySlo, LatencySlo, duration_text
from core.config import MonitorSchedule

VERSION = ("model_name", "model_version")
_BY = ", ".join(VERSION)
_ARGS = " ".join(f"$labels.{label}" for label in VERSION)


@dataclass(frozen=True)
class Signal:
    """One platform signal of a model version, recorded over a window, with its healthy limit."""

    name: str
    record: str
    expr: str
    limit: float
    limit_text: str

    @property
    def unhealthy(self) -> str:
        """PromQL format (model name, version) that finds the signal above its limit."""
        return f"{self.record}{{model_name=%q, model_version=%q}} > {number(self.limit)}"

    @property
    def known(self) -> str:
        """PromQL format that finds the signal at all (no requests: NaN, which it drops)."""
        return f"{self.record}{{model_name=%q, model_version=%q}} >= 0"

    def clause(self) -> str:
        """`<name> UNHEALTHY/healthy/unknown`, decided by Prometheus when the alert renders."""
        return (
            f'{self.name} {{{{ with query (printf "{self.unhealthy}" {_ARGS}) }}}}'
            f"UNHEALTHY (above {self.limit_text}){{{{ else }}}}"
            f'{{{{ with query (printf "{self.known}" {_ARGS}) }}}}'
            f"healthy (within {self.limit_text}){{{{ else }}}}unknown (no requests)"
            "{{ end }}{{ end }}"
        )

    def found(self, labels: Mapping[str, str], state: str) -> set[str]:
        """The queries of `clause` that find data when the signal is `state` for `labels`."""
        values = [labels[label] for label in VERSION]
        formats = {"unhealthy": [self.unhealthy, self.known], "healthy": [self.known]}
        return {templating.sprintf(fmt, values) for fmt in formats.get(state, [])}


def signals(spec: AlertSpec, window: str) -> tuple[Signal, ...]:
    """Server errors, p99 latency and shed requests of each model version over `window`."""
    errors = spec.objective(spec.triage.errors)
    latency = spec.objective(spec.triage.latency)
    assert isinstance(errors, AvailabilitySlo)
    assert isinstance(latency, LatencySlo)
    outcome = spec.triage.shed_outcome
    bucket = "servewatch_request_duration_seconds_bucket"
    requests = "servewatch_requests_total"
    return (
        Signal(
            "server errors",
            f"model_version:servewatch_slo_{errors.name}_errors:ratio_rate{window}",
            error_ratio(errors, window, by=_BY),
            1 - errors.objective,
            percent(1 - errors.objective),
        ),
        Signal(
            "p99 latency",
            f"model_version:servewatch_request_duration_seconds:p99_rate{window}",
            f"histogram_quantile(0.99, sum by (le, {_BY}) (rate({bucket}[{window}])))",
            latency.threshold_seconds,
            f"{number(latency.threshold_seconds)}s",
        ),
        Signal(
            f"requests shed as {outcome}",
            f"model_version:servewatch_requests_{outcome}:ratio_rate{window}",
            zero_if_none(
                f'sum by ({_BY}) (rate({requests}{{outcome="{outcome}"}}[{window}]))',
                f"sum by ({_BY}) (rate({requests}[{window}]))",
            ),
            spec.triage.shed_ratio,
            percent(spec.triage.shed_ratio),
        ),
    )


def monitor_window(schedules: Mapping[str, MonitorSchedule], monitor: str) -> str:
    """The trailing window a monitor judges, as a Prometheus duration."""
    schedule = schedules.get(monitor) or MonitorSchedule()
    return duration_text(schedule.window_seconds)


def platform_clause(spec: AlertSpec, window: str) -> str:
    """The description sentences on the platform's health for the alert's model version."""
    verdicts = "; ".join(signal.clause() for signal in signals(spec, window))
    return (
        "Platform for {{ $labels.model_name }} {{ $labels.model_version }} over the "
        f"monitor's {window} window: {verdicts}. An unhealthy platform points at an "
        "infrastructure incident first; a healthy one at the model or its inputs."
    )


def platform_group(spec: AlertSpec, windows: Iterable[str]) -> RuleGroup:
    """The signals' recording rules for every window a drift description reads."""
    rules = tuple(
        RecordingRule(signal.record, signal.expr)
        for window in sorted(set(windows))
        for signal in signals(spec, window)
    )
    return RuleGroup("servewatch-platform", rules)
