"""Canary alerts: a rollout's candidate worse than its baseline on the same endpoint (server
errors, latency, mean confidence), judged only while the rollout is in force."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.promql import one_of
from alerts.rules import AlertRule, RecordingRule, RuleGroup
from alerts.slo import error_ratio, number, percent
from alerts.spec import AlertSpec, AvailabilitySlo

ROLES = ("candidate", "baseline")
LEVEL = "endpoint, model_name, model_version"
VERSION = "model_name, model_version"


@dataclass(frozen=True)
class CanarySeries:
    """The names of the recorded series the canary alerts read."""

    window: str
    quantile: float
    errors_slo: str

    def role(self, role: str) -> str:
        """The rollout weight of the versions in `role` of a rollout in force (0 < w < 100)."""
        return f"endpoint_version:servewatch_rollout_weight:{role}"

    @property
    def errors(self) -> str:
        return f"endpoint_version:servewatch_slo_{self.errors_slo}_errors:ratio_rate{self.window}"

    @property
    def requests(self) -> str:
        return f"endpoint_version:servewatch_requests:increase{self.window}"

    @property
    def latency(self) -> str:
        return (
            f"endpoint_version:servewatch_request_duration_seconds:"
            f"{quantile_name(self.quantile)}_rate{self.window}"
        )

    @property
    def confidence(self) -> str:
        return f"model_version:servewatch_prediction_confidence:mean_rate{self.window}"

    @property
    def predictions(self) -> str:
        return f"model_version:servewatch_predictions:increase{self.window}"


def quantile_name(quantile: float) -> str:
    """`p99` for 0.99, `p995` for 0.995."""
    return "p" + format(quantile * 100, "g").replace(".", "")


def canary_series(spec: AlertSpec) -> CanarySeries:
    return CanarySeries(spec.canary.window, spec.canary.latency.quantile, spec.triage.errors)


def _availability(spec: AlertSpec) -> AvailabilitySlo:
    errors = spec.objective(spec.triage.errors)
    assert isinstance(errors, AvailabilitySlo)  # the spec validates triage.errors' kind
    return errors


def recording_rules(spec: AlertSpec) -> tuple[RecordingRule, ...]:
    """Per-role rollout weights, and per endpoint and version the errors, requests and latency
    (per version the mean confidence) over the canary window."""
    names, window = canary_series(spec), spec.canary.window
    errors = _availability(spec)
    counted = one_of(errors.good_outcomes + errors.bad_outcomes)
    bucket = "servewatch_request_duration_seconds_bucket"
    confidence = "servewatch_prediction_confidence"
    by_version = f"sum by ({VERSION})"
    return (
        *(
            RecordingRule(
                names.role(role),
                f'max by ({LEVEL}) (servewatch_rollout_weight{{role="{role}"}}) > 0 < 100',
            )
            for role in ROLES
        ),
        RecordingRule(names.errors, error_ratio(errors, window, by=LEVEL)),
        RecordingRule(
            names.requests,
            f'sum by ({LEVEL}) (increase(servewatch_requests_total{{outcome=~"{counted}"}}'
            f"[{window}]))",
        ),
        RecordingRule(
            names.latency,
            f"histogram_quantile({number(spec.canary.latency.quantile)}, "
            f"sum by (le, {LEVEL}) (rate({bucket}[{window}])))",
        ),
        RecordingRule(
            names.confidence,
            f"{by_version} (rate({confidence}_sum[{window}]))\n/\n"
            f"{by_version} (rate({confidence}_count[{window}]))",
        ),
        RecordingRule(names.predictions, f"{by_version} (increase({confidence}_count[{window}]))"),
    )


def _candidate(names: CanarySeries, series: str, min_requests: int) -> str:
    """`series` of the candidates in force that answered `min_requests` over the window."""
    return (
        f"(\n  {series}\n  and on ({LEVEL}) {names.role('candidate')}\n"
        f"  and on ({LEVEL}) {names.requests} >= {min_requests}\n)"
    )


def _baseline(names: CanarySeries, series: str) -> str:
    """`series` of each endpoint's baseline in force, by endpoint."""
    return f"max by (endpoint) ({series} and on ({LEVEL}) {names.role('baseline')})"


def _with_endpoint(names: CanarySeries, role: str) -> str:
    """The mean confidence of the versions in `role`, labelled with their rollout's endpoint."""
    return f"(0 * {names.role(role)}) + on ({VERSION}) group_left {names.confidence}"


def errors_alert(spec: AlertSpec, runbook: str) -> AlertRule:
    canary, names = spec.canary, canary_series(spec)
    entry = canary.errors
    limit = f"{number(entry.factor)} * {_baseline(names, names.errors)} + {number(entry.margin)}"
    bad = ", ".join(_availability(spec).bad_outcomes)
    return AlertRule(
        name=entry.alert,
        expr=(
            f"{_candidate(names, names.errors, canary.min_requests)}\n"
            f"> on (endpoint) group_left ()\n({limit})"
        ),
        severity=entry.severity,
        for_=entry.for_,
        summary=(
            "Canary {{ $labels.model_name }} {{ $labels.model_version }} fails more than its "
            "baseline on {{ $labels.endpoint }}."
        ),
        description=(
            "{{ $value | humanizePercentage }} of the requests the canary "
            "{{ $labels.model_name }} {{ $labels.model_version }} answered on "
            f"{{{{ $labels.endpoint }}}} over the last {canary.window} failed with a server-side "
            f"error ({bad}), above {number(entry.factor)}x its baseline's ratio plus "
            f"{percent(entry.margin)}, for {entry.for_}. `servewatch rollout abort` "
            "moves its traffic back to the baseline."
        ),
        runbook_url=f"{runbook}#{entry.alert.lower()}",
    )


def latency_alert(spec: AlertSpec, runbook: str) -> AlertRule:
    canary, names = spec.canary, canary_series(spec)
    entry = canary.latency
    name = quantile_name(entry.quantile)
    limit = f"{number(entry.factor)} * {_baseline(names, names.latency)}"
    return AlertRule(
        name=entry.alert,
        expr=(
            f"(\n{_candidate(names, names.latency, canary.min_requests)}\n"
            f"> on (endpoint) group_left ()\n({limit})\n)\n> {number(entry.floor_seconds)}"
        ),
        severity=entry.severity,
        for_=entry.for_,
        summary=(
            "Canary {{ $labels.model_name }} {{ $labels.model_version }} is slower than its "
            "baseline on {{ $labels.endpoint }}."
        ),
        description=(
            f"The {name} latency of the canary {{{{ $labels.model_name }}}} "
            "{{ $labels.model_version }} on {{ $labels.endpoint }} is "
            "{{ $value | humanizeDuration }} over the last "
            f"{canary.window}, above {number(entry.factor)}x its baseline's and above "
            f"{number(entry.floor_seconds)}s, for {entry.for_}."
        ),
        runbook_url=f"{runbook}#{entry.alert.lower()}",
    )


def drift_alert(spec: AlertSpec, runbook: str) -> AlertRule:
    canary, names = spec.canary, canary_series(spec)
    entry = canary.drift
    baseline = f"max by (endpoint) (\n  {_with_endpoint(names, 'baseline')}\n)"
    candidate = (
        f"(\n  {_with_endpoint(names, 'candidate')}\n"
        f"  and on ({VERSION}) {names.predictions} >= {canary.min_requests}\n)"
    )
    return AlertRule(
        name=entry.alert,
        expr=(
            f"(\n{baseline}\n- on (endpoint) group_right ()\n{candidate}\n)\n"
            f"> {number(entry.confidence_drop)}"
        ),
        severity=entry.severity,
        for_=entry.for_,
        summary=(
            "Canary {{ $labels.model_name }} {{ $labels.model_version }} is less confident "
            "than its baseline on {{ $labels.endpoint }}."
        ),
        description=(
            "The mean confidence of the canary {{ $labels.model_name }} "
            '{{ $labels.model_version }} is {{ printf "%.3f" $value }} below its baseline\'s on '
            f"{{{{ $labels.endpoint }}}} over the last {canary.window} (threshold "
            f"{number(entry.confidence_drop)}), for {entry.for_}. Split by request hash, "
            "both versions see the same mix of inputs, so the drop is the model's."
        ),
        runbook_url=f"{runbook}#{entry.alert.lower()}",
    )


def canary_groups(spec: AlertSpec, runbook: str) -> list[RuleGroup]:
    """The recorded canary series, then the three canary alerts."""
    alerts = (errors_alert(spec, runbook), latency_alert(spec, runbook), drift_alert(spec, runbook))
    return [
        RuleGroup("servewatch-canary-signals", recording_rules(spec)),
        RuleGroup("servewatch-canary", alerts),
    ]
