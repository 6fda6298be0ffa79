"""The Serving dashboard's rollout row: a canary's candidate beside its baseline, per version."""

from __future__ import annotations

from alerts.canary import LEVEL, VERSION
from alerts.slo import percent
from alerts.spec import AlertSpec, AvailabilitySlo
from dashboards.layout import Row
from dashboards.links import Runbooks
from dashboards.panels import Query, timeseries
from dashboards.serving import ENDPOINT, MODEL, RATE, REQUESTS, availability_selectors, error_share

# The versions of the rollouts in force on the selected endpoints, by role; after a promotion
# the candidate alone (its baseline's weight is 0).
WEIGHTS = f"servewatch_rollout_weight{{{ENDPOINT}, {MODEL}}}"
IN_FORCE = f"max by ({LEVEL}, role) ({WEIGHTS}) > 0"
LEGEND = "{{role}} {{model_name}} {{model_version}} ({{endpoint}})"
VERSION_LEGEND = "{{role}} {{model_name}} {{model_version}}"


def by_role(expr: str) -> str:
    """`expr` (per endpoint and version) for the versions in a rollout, labelled with their role."""
    return f"{expr}\n+ on ({LEVEL}) group_left (role)\n(0 * ({IN_FORCE}))"


def by_version_role(expr: str) -> str:
    """`expr` (per version, no endpoint) for the versions in a rollout, with their role."""
    roles = f"max by ({VERSION}, role) (\n  {IN_FORCE}\n)"
    return f"{expr}\n+ on ({VERSION}) group_left (role)\n(0 * {roles})"


def rollout_row(spec: AlertSpec, runbooks: Runbooks) -> Row:
    """Weight, traffic, server errors, latency, confidence and class shares of each version in
    a rollout in force, candidate beside baseline."""
    canary = spec.canary
    bucket = f"servewatch_request_duration_seconds_bucket{{{REQUESTS}}}"
    predictions = f'{MODEL}, tenant=~"$tenant"'
    confidence = "servewatch_prediction_confidence"
    classes = f"servewatch_predicted_class_total{{{predictions}}}"
    availability = spec.objective(spec.triage.errors)
    assert isinstance(availability, AvailabilitySlo)  # the spec validates triage.errors' kind
    errors, valid = availability_selectors(availability, REQUESTS)
    shares = (
        f"sum by ({VERSION}, predicted_class) (rate({classes}[{RATE}]))\n/ on ({VERSION}) "
        f"group_left\nsum by ({VERSION}) (rate({classes}[{RATE}]))"
    )
    mean = (
        f"sum by ({VERSION}) (rate({confidence}_sum{{{predictions}}}[{RATE}]))\n/\n"
        f"sum by ({VERSION}) (rate({confidence}_count{{{predictions}}}[{RATE}]))"
    )
    return Row(
        "Rollout: candidate beside baseline",
        [
            timeseries(
                "Rollout weight",
                "Percent of an endpoint's baseline traffic each version of a canary rollout in "
                "force takes (servewatch_rollout_weight, by role); the steps are the rollout's "
                "steps, and the lines end when it is aborted or rolled back.",
                "percent",
                [Query(IN_FORCE, LEGEND)],
                width=8,
                max_value=100,
                steps_after=True,
            ),
            timeseries(
                "Requests, candidate beside baseline",
                "Business requests per second each version of a rollout answers, all outcomes: "
                "the split really applied by the workers.",
                "reqps",
                [
                    Query(
                        by_role(
                            f"sum by ({LEVEL}) (rate(servewatch_requests_total{{{REQUESTS}}}"
                            f"[{RATE}]))"
                        ),
                        LEGEND,
                    )
                ],
                width=8,
            ),
            timeseries(
                "Server errors, candidate beside baseline",
                "Share of each version's requests that failed with a server-side error "
                f"({', '.join(availability.bad_outcomes)}). "
                f"{canary.errors.alert} fires when the candidate's ratio over {canary.window} "
                f"is above {canary.errors.factor:g}x the baseline's plus "
                f"{percent(canary.errors.margin)}.",
                "percentunit",
                [Query(by_role(error_share(errors, valid, LEVEL)), LEGEND)],
                width=8,
                links=runbooks.links(canary.errors.alert),
            ),
            timeseries(
                "p95 / p99 latency, candidate beside baseline",
                "Quantiles of the request duration per version of a rollout. "
                f"{canary.latency.alert} fires when the candidate's p"
                f"{canary.latency.quantile * 100:g} over {canary.window} is above "
                f"{canary.latency.factor:g}x the baseline's and {canary.latency.floor_seconds:g}s.",
                "s",
                [
                    Query(
                        by_role(
                            f"histogram_quantile({q}, sum by (le, {LEVEL}) "
                            f"(rate({bucket}[{RATE}])))"
                        ),
                        f"p{round(q * 100)} {LEGEND}",
                    )
                    for q in (0.95, 0.99)
                ],
                width=8,
                links=runbooks.links(canary.latency.alert),
            ),
            timeseries(
                "Mean confidence, candidate beside baseline",
                "Average probability of the returned class per version of a rollout. "
                f"{canary.drift.alert} fires when the candidate's is more than "
                f"{canary.drift.confidence_drop:g} below the baseline's over {canary.window}.",
                "percentunit",
                [Query(by_version_role(mean), VERSION_LEGEND)],
                width=8,
                max_value=1,
                links=runbooks.links(canary.drift.alert),
            ),
            timeseries(
                "Class shares, candidate beside baseline",
                "Share of each version's predictions per returned class: a candidate that "
                "moves its answers to other classes than its baseline shifted.",
                "percentunit",
                [Query(by_version_role(shares), f"{VERSION_LEGEND} {{{{predicted_class}}}}")],
                width=8,
                max_value=1,
            ),
        ],
    )
