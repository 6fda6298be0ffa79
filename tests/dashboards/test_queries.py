"""Every dashboard query parses as PromQL, selects only catalog or recorded series, and computes
what its panel says on Prometheus' own engine (promtool)."""

import re
import subprocess
from dataclasses import dataclass, field

import pytest
import yaml

from alerts.promql import le
from alerts.slo import ratio_series, windows
from core.catalog import CATALOG, LATENCY_BUCKETS, PREDICTION_LOG_EVENTS
from core.contracts import MONITOR_NAMES, MONITOR_TABLE, OUTCOMES
from dashboards.datasources import POSTGRES_UID, PROMETHEUS_UID
from dashboards.render import CatalogError, check_queries, prometheus_queries
from tests.alerts.conftest import tool
from tests.dashboards.conftest import panels

GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)")
VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")


def as_plain_promql(expr: str) -> str:
    """Grafana's interval macros and variables replaced as Grafana would, with sample values."""
    return VARIABLE.sub("x", GRAFANA_RANGES.sub("5m", expr))


def test_every_query_parses_with_promtool(dashboards, tmp_path):
    queries = [q for d in dashboards.values() for _, q in prometheus_queries(d)]
    assert len(queries) > 40
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": as_plain_promql(q)}
        for i, q in enumerate(queries)
    ]
    path = tmp_path / "queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parse_check_can_fail(tmp_path):
    path = tmp_path / "bad.rules.yaml"
    rule = {"record": "a:b:c", "expr": as_plain_promql("sum by (le (rate(x[$__rate_interval]))")}
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode != 0


def test_every_query_selects_only_catalog_series(dashboards, known):
    for dashboard in dashboards.values():
        check_queries(dashboard, known)


def _one_panel(expr):
    target = {"datasource": {"type": "prometheus"}, "expr": expr}
    return {"title": "t", "panels": [{"type": "timeseries", "title": "p", "targets": [target]}]}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(servewatch_nope[5m])", "unknown series servewatch_nope"),
        # A window the SLO recording rules do not record.
        (
            "endpoint:servewatch_slo_availability_errors:ratio_rate7m",
            "unknown series endpoint:servewatch_slo_availability_errors:ratio_rate7m",
        ),
        ('ALERTS{alertname="x", alertstat="firing"}', "ALERTS has no label alertstat"),
        ('servewatch_in_flight_requests{tenant="acme"}', "has no label tenant"),
    ],
)
def test_a_query_outside_the_catalog_and_the_rules_is_refused(known, expr, problem):
    with pytest.raises(CatalogError, match=problem):
        check_queries(_one_panel(expr), known)


def test_recorded_series_and_alerts_are_known(known, spec):
    for objective in spec.slo.objectives:
        for window in windows(spec.slo):
            check_queries(_one_panel(ratio_series(objective, window)), known)
    check_queries(_one_panel('ALERTS{alertname="x", alertstate="firing", tenant="a"}'), known)


def test_annotation_queries_are_checked_too(known):
    annotation = {"name": "a", "datasource": {"type": "prometheus"}, "expr": "servewatch_nope"}
    with pytest.raises(CatalogError, match="annotation 'a'"):
        check_queries({"title": "t", "annotations": {"list": [annotation]}}, known)


def test_rates_use_the_rate_interval(dashboards):
    for dashboard in dashboards.values():
        for where, expr in prometheus_queries(dashboard):
            for window in re.findall(r"(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr):
                assert window in ("$__rate_interval", "$__range"), (where, expr)


def test_datasources_are_the_provisioned_uids(dashboards):
    for dashboard in dashboards.values():
        variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
        assert variable["current"]["value"] == PROMETHEUS_UID
        for panel in panels(dashboard):
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert ref["uid"] in ("${datasource}", POSTGRES_UID), panel["title"]


def evaluable(expr, values=None):
    """`expr` as Grafana would send it: ranges at 5m, variables at `values` (else All, `.*`)."""
    values = values or {}
    return VARIABLE.sub(lambda m: values.get(m.group(1), ".*"), GRAFANA_RANGES.sub("5m", expr))


def promtool_test(tmp_path, rules_text, input_series, expr_tests):
    """Run `promtool test rules` on the generated rules (so recorded series exist)."""
    (tmp_path / "rules.yaml").write_text(rules_text or "groups: []\n")
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "promql_expr_test": expr_tests}],
    }
    path = tmp_path / "panel.tests.yaml"
    path.write_text(yaml.safe_dump(test))
    return subprocess.run(
        [tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True
    )


def _labels(mapping):
    return "{" + ", ".join(f'{k}="{v}"' for k, v in mapping.items()) + "}"


def _series(name, values, **labels):
    return {"series": f"{name}{_labels(labels)}", "values": values}


def _requests(endpoint, outcome, per_minute, tenant="acme", version="1", minutes=10):
    return _series(
        "servewatch_requests_total",
        f"0+{per_minute}x{minutes}",
        endpoint=endpoint,
        model_name="m",
        model_version=version,
        tenant=tenant,
        outcome=outcome,
    )


def _classes(name, per_minute):
    return _series(
        "servewatch_predicted_class_total",
        f"0+{per_minute}x10",
        model_name="m",
        model_version="1",
        tenant="acme",
        predicted_class=name,
    )


def _durations(tenant, upper, per_minute):
    """Requests of `tenant` all in the latency bucket that ends at `upper` (one below: 0)."""
    name = "servewatch_request_duration_seconds_bucket"
    below = LATENCY_BUCKETS[LATENCY_BUCKETS.index(upper) - 1]
    labels = {"endpoint": "e", "model_name": "m", "model_version": "1", "tenant": tenant}
    return [
        _series(name, "0+0x10", **labels, le=le(below)),
        _series(name, f"0+{per_minute}x10", **labels, le=le(upper)),
        _series(name, f"0+{per_minute}x10", **labels, le="+Inf"),
    ]


def _status(monitor, metric, version, status, monitor_tenant="acme"):
    return _series(
        "servewatch_monitor_status",
        f"{status}+0x10",
        monitor=monitor,
        metric=metric,
        model_name="m",
        model_version=version,
        tenant=monitor_tenant,
    )


def _alert(alertname, state, **labels):
    return _series("ALERTS", "1+0x10", alertname=alertname, alertstate=state, **labels)


def _weight(version, role, values, endpoint="classify_ticket"):
    return _series(
        "servewatch_rollout_weight",
        values,
        endpoint=endpoint,
        model_name="m",
        model_version=version,
        role=role,
    )


def _confidence(version, per_minute, mean):
    labels = {"model_name": "m", "model_version": version, "tenant": "acme"}
    return [
        _series("servewatch_prediction_confidence_count", f"0+{per_minute}x10", **labels),
        _series("servewatch_prediction_confidence_sum", f"0+{per_minute * mean}x10", **labels),
    ]


# Version 2 canaried at 25 % over version 1 on classify_ticket; version 3 is not in a rollout.
ROLLOUT = [_weight("1", "baseline", "75x10"), _weight("2", "candidate", "25x10")]


def _info(version, values):
    return _series(
        "servewatch_model_info", values, model_name="m", model_version=version, provider="cpu"
    )


def _calls(service, per_minute, model="m", bucket=(0.05, 0.1)):
    """The gateway's calls to `service`, all timed within `bucket` (one below: 0)."""
    labels = {"service": service, "model_name": model, "model_version": "1"}
    name = "servewatch_model_call_duration_seconds"
    lower, upper = bucket
    return [
        _series(f"{name}_bucket", "0+0x10", **labels, le=le(lower)),
        _series(f"{name}_bucket", f"0+{per_minute}x10", **labels, le=le(upper)),
        _series(f"{name}_bucket", f"0+{per_minute}x10", **labels, le="+Inf"),
        _series(f"{name}_count", f"0+{per_minute}x10", **labels),
    ]


def _call_errors(service, reason, per_minute, model="m"):
    return _series(
        "servewatch_model_call_errors_total",
        f"0+{per_minute}x10",
        service=service,
        model_name=model,
        reason=reason,
    )


@dataclass(frozen=True)
class Case:
    """A query of a dashboard (a panel's target or an annotation) and what it must compute."""

    uid: str
    where: str
    series: list
    checks: list  # (eval_time, [(labels, value)])
    target: int = 0
    values: dict = field(default_factory=dict)
    rules: bool = True

    @property
    def id(self):
        return f"{self.uid}: {self.where}"

    def expr(self, dashboard):
        if self.where.startswith("annotation "):
            name = self.where.removeprefix("annotation ")
            found = [a for a in dashboard["annotations"]["list"] if a["name"] == name]
            return found[0]["expr"]
        panel = next(p for p in panels(dashboard) if p["title"] == self.where)
        return panel["targets"][self.target]["expr"]


ROLE_LABELS = {
    version: {
        "endpoint": "classify_ticket",
        "model_name": "m",
        "model_version": version,
        "role": role,
    }
    for version, role in (("1", "baseline"), ("2", "candidate"))
}

BUDGET_HALF_SPENT = [  # 1 server-side error in 400 counted requests: half the 0.5 % budget
    _requests("classify_ticket", "ok", 399, minutes=70),
    _requests("classify_ticket", "model_error", 1, minutes=70),
    _requests("classify_ticket", "validation_error", 50, minutes=70),
    # 2.5 % errors for 30 minutes, then no traffic at all: 5 budgets' worth, spent.
    _series(
        "servewatch_requests_total",
        "0+195x30 5850+0x40",
        endpoint="classify_tickets",
        model_name="m",
        model_version="1",
        tenant="acme",
        outcome="ok",
    ),
    _series(
        "servewatch_requests_total",
        "0+5x30 150+0x40",
        endpoint="classify_tickets",
        model_name="m",
        model_version="1",
        tenant="acme",
        outcome="timeout",
    ),
]

CASES = [
    Case(
        "servewatch-serving",
        "Availability (SLI) by endpoint",
        [
            _requests("classify_ticket", "ok", 90),
            _requests("classify_ticket", "model_error", 10),
            _requests("classify_ticket", "validation_error", 50),
            _requests("classify_tickets", "ok", 100),
        ],
        [("10m", [({"endpoint": "classify_ticket"}, 0.9), ({"endpoint": "classify_tickets"}, 1)])],
    ),
    Case(
        "servewatch-serving",
        "Server-side error ratio by tenant",
        [
            _requests("classify_ticket", "ok", 90),
            _requests("classify_ticket", "model_error", 10),
            _requests("classify_ticket", "validation_error", 50),
            _requests("classify_ticket", "ok", 100, tenant="globex"),
        ],
        [("10m", [({"tenant": "acme"}, 0.1), ({"tenant": "globex"}, 0)])],
    ),
    Case(
        "servewatch-serving",
        "p99 latency by tenant",
        [*_durations("acme", 0.1, 10), *_durations("globex", 1.0, 10)],
        # Linear inside the bucket: 0.05 + 0.99 * 0.05, 0.5 + 0.99 * 0.5.
        [("10m", [({"tenant": "acme"}, 0.0995), ({"tenant": "globex"}, 0.995)])],
    ),
    Case(
        "servewatch-serving",
        "Error budget left: availability",
        BUDGET_HALF_SPENT,
        # The idle 40 minutes of classify_tickets (0/0) are left out, not averaged in as NaN.
        [("70m", [({"endpoint": "classify_ticket"}, 0.5), ({"endpoint": "classify_tickets"}, -4)])],
    ),
    Case(
        "servewatch-serving",
        "Burn rate: availability",
        BUDGET_HALF_SPENT,
        # Target A: the 1h window. classify_tickets had no traffic for 40 of its 60 minutes.
        [("70m", [({"endpoint": "classify_ticket"}, 0.5), ({"endpoint": "classify_tickets"}, 5)])],
    ),
    Case(
        "servewatch-model-quality",
        "Class shares over time",
        [_classes("billing", 30), _classes("outage", 10)],
        [
            (
                "10m",
                [
                    ({"model_name": "m", "predicted_class": "billing"}, 0.75),
                    ({"model_name": "m", "predicted_class": "outage"}, 0.25),
                ],
            )
        ],
    ),
    Case(
        "servewatch-triage",
        "Error ratio by class",
        [
            _requests("classify_ticket", "ok", 85),
            _requests("classify_ticket", "model_error", 10),
            _requests("classify_ticket", "timeout", 5),
            _requests("classify_ticket", "validation_error", 50),
            # Another version of the same model, all failing: not in version 1's row.
            _requests("classify_ticket", "model_error", 100, version="2"),
        ],
        [
            (
                "10m",
                [
                    ({"model_name": "m", "outcome": "model_error"}, 0.1),
                    ({"model_name": "m", "outcome": "timeout"}, 0.05),
                ],
            )
        ],
        values={"version": "1"},
    ),
    Case(
        "servewatch-triage",
        "Drift verdicts",
        [
            _status("confidence_drift", "psi", "1", 1),
            _status("confidence_drift", "js_distance", "1", 2),
            _status("class_shift", "psi", "1", 0),
            _status("class_shift", "psi", "2", 2),
            _status("schema_failures", "failure_rate", "1", 2),
        ],
        [
            (
                "10m",
                [
                    ({"model_name": "m", "monitor": "confidence_drift", "tenant": "acme"}, 2),
                    ({"model_name": "m", "monitor": "class_shift", "tenant": "acme"}, 0),
                ],
            )
        ],
        values={"version": "1"},
    ),
    Case(
        "servewatch-triage",
        "annotation Releases",
        [
            # Version 1 serves from the start, with a 5-minute restart at 40m; version 2
            # starts serving at 30m.
            _info("1", "1x39 _x5 1x25"),
            _info("2", "_x30 1x40"),
        ],
        [
            ("0m", [({"model_name": "m", "model_version": "1"}, 1)]),
            ("10m", []),
            ("31m", [({"model_name": "m", "model_version": "2"}, 1)]),
            ("34m", [({"model_name": "m", "model_version": "2"}, 1)]),
            ("36m", []),
            ("46m", []),
        ],
    ),
    Case(
        "servewatch-triage",
        "annotation Alerts",
        [
            _alert("ServewatchClassShift", "firing", model_name="m", tenant="acme"),
            _alert("ServewatchClassShift", "firing", model_name="other", tenant="acme"),
            _alert("ServewatchClassShift", "pending", model_name="m", tenant="acme"),
            _alert("ServewatchAvailabilityFastBurn", "firing", endpoint="classify_ticket"),
        ],
        [
            (
                "5m",
                [
                    (
                        {
                            "alertname": "ServewatchClassShift",
                            "alertstate": "firing",
                            "model_name": "m",
                            "tenant": "acme",
                        },
                        1,
                    ),
                    (
                        {
                            "alertname": "ServewatchAvailabilityFastBurn",
                            "alertstate": "firing",
                            "endpoint": "classify_ticket",
                        },
                        1,
                    ),
                ],
            )
        ],
        values={"model": "m", "tenant": "acme"},
        # Without the rules: their target alerts would fire here, with no `up` series.
        rules=False,
    ),
    Case(
        "servewatch-serving",
        "Server errors, candidate beside baseline",
        [
            *ROLLOUT,
            _requests("classify_ticket", "ok", 99),
            _requests("classify_ticket", "model_error", 1),
            _requests("classify_ticket", "ok", 90, version="2"),
            _requests("classify_ticket", "timeout", 10, version="2"),
            _requests("classify_ticket", "validation_error", 50, version="2"),
            _requests("classify_ticket", "model_error", 50, version="3"),
        ],
        [
            (
                "10m",
                [
                    (ROLE_LABELS["1"], 0.01),
                    (ROLE_LABELS["2"], 0.1),
                ],
            )
        ],
    ),
    Case(
        "servewatch-serving",
        "Mean confidence, candidate beside baseline",
        [
            *ROLLOUT,
            *_confidence("1", 100, 0.9),
            *_confidence("2", 20, 0.7),
            *_confidence("3", 5, 0.1),
        ],
        [
            (
                "10m",
                [
                    ({"model_name": "m", "model_version": "1", "role": "baseline"}, 0.9),
                    ({"model_name": "m", "model_version": "2", "role": "candidate"}, 0.7),
                ],
            )
        ],
    ),
    Case(
        "servewatch-serving",
        "annotation Rollout steps",
        # Started at 5 % at 10m, stepped to 25 % at 20m, aborted (0) at 40m.
        [_weight("2", "candidate", "_x10 5x9 25x19 0x10")],
        [
            (
                "12m",
                [({"endpoint": "classify_ticket", "model_name": "m", "model_version": "2"}, 5)],
            ),
            ("16m", []),
            (
                "22m",
                [({"endpoint": "classify_ticket", "model_name": "m", "model_version": "2"}, 1)],
            ),
            ("27m", []),
            (
                "41m",
                [({"endpoint": "classify_ticket", "model_name": "m", "model_version": "2"}, 1)],
            ),
            ("47m", []),
        ],
    ),
    Case(
        "servewatch-serving",
        "Gateway-to-model latency p50 / p99 by service",
        [
            *_calls("ticket", 10),
            *_calls("risk", 10, bucket=(0.5, 1.0)),
            # Another model's service: left out when the model variable names m.
            *_calls("bulk", 10, model="other"),
        ],
        # Target B, the p99: linear inside the bucket, 0.05 + 0.99 * 0.05 and 0.5 + 0.99 * 0.5.
        [("10m", [({"service": "ticket"}, 0.0995), ({"service": "risk"}, 0.995)])],
        target=1,
        values={"model": "m"},
    ),
    Case(
        "servewatch-serving",
        "Model call errors by reason",
        [
            _call_errors("ticket", "timeout", 6),
            _call_errors("ticket", "model_error", 3),
            _call_errors("risk", "overloaded", 60),
        ],
        [
            (
                "10m",
                [
                    ({"service": "ticket", "reason": "timeout"}, 0.1),
                    ({"service": "ticket", "reason": "model_error"}, 0.05),
                    ({"service": "risk", "reason": "overloaded"}, 1),
                ],
            )
        ],
    ),
    Case(
        "servewatch-serving",
        "Model service calls in flight",
        [
            # Two gateway replicas calling the ticket service add up.
            _series("servewatch_model_service_queue_depth", "3x10", service="ticket", instance="a"),
            _series("servewatch_model_service_queue_depth", "4x10", service="ticket", instance="b"),
            _series("servewatch_model_service_queue_depth", "2x10", service="risk", instance="a"),
        ],
        [("10m", [({"service": "ticket"}, 7), ({"service": "risk"}, 2)])],
    ),
    Case(
        "servewatch-serving",
        "Model calls by service",
        [*_calls("ticket", 120), *_calls("risk", 60)],
        [("10m", [({"service": "ticket"}, 2), ({"service": "risk"}, 1)])],
    ),
    Case(
        "servewatch-serving",
        "Model call error ratio by service",
        [
            *_calls("ticket", 100),
            _call_errors("ticket", "timeout", 5),
            _call_errors("ticket", "model_error", 5),
            # A service without any failed call reads 0, not "no data".
            *_calls("risk", 50),
        ],
        [
            (
                "10m",
                [
                    ({"service": "ticket", "model_name": "m"}, 0.1),
                    ({"service": "risk", "model_name": "m"}, 0),
                ],
            )
        ],
    ),
    Case(
        "servewatch-finops",
        "Weekly budget burn per tenant",
        [
            _series("servewatch_tenant_week_cost_usd", "4+0x10", tenant="acme"),
            _series("servewatch_tenant_weekly_budget_usd", "5+0x10", tenant="acme"),
            _series("servewatch_tenant_week_cost_usd", "1+0x10", tenant="globex"),
        ],
        [("10m", [({"tenant": "acme"}, 0.8)])],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_queries_compute_what_their_titles_say(dashboards, rules_text, tmp_path, case):
    expr = evaluable(case.expr(dashboards[case.uid]), case.values)
    tests = [
        {
            # Rounded: the ratios of rates are exact only to a few ulps.
            "expr": f"round({expr}, 0.0001)",
            "eval_time": at,
            "exp_samples": [{"labels": _labels(lbl), "value": v} for lbl, v in expected],
        }
        for at, expected in case.checks
    ]
    rules = rules_text if case.rules else ""
    result = promtool_test(tmp_path, rules, case.series, tests)
    assert result.returncode == 0, result.stdout + result.stderr


MINUTES = 70
# Values for the labels whose values the queries tell apart; the others take one value each.
LABEL_VALUES = {
    "outcome": OUTCOMES,
    "event": PREDICTION_LOG_EVENTS,
    "kind": ("attributed", "idle"),
    "severity": ("warn", "alert"),
    "predicted_class": ("billing", "outage"),
}
ONE_VALUE = {"model_name": "m", "model_version": "1", "tenant": "acme", "endpoint": "e"}


def _label_sets(entry):
    """Every combination of the varied labels; monitor and metric in the pairs that exist."""
    sets = [{}]
    for label in entry.labels:
        if label == "metric" and "monitor" in entry.labels:
            continue
        if label == "monitor" and "metric" in entry.labels:
            choices = [
                {"monitor": m.name, "metric": n} for m in MONITOR_TABLE for n in m.metric_names
            ]
        elif label == "monitor":
            choices = [{"monitor": name} for name in MONITOR_NAMES]
        else:
            choices = [{label: v} for v in LABEL_VALUES.get(label, (ONE_VALUE.get(label, "x"),))]
        sets = [{**s, **c} for s in sets for c in choices]
    return sets


def _catalog_series(entry):
    """Input series for one catalog family: counters rise, gauges hold, histograms fill."""
    for labels in _label_sets(entry):
        if entry.kind == "histogram":
            bounds = [*(le(b) for b in entry.buckets), "+Inf"]
            for i, bound in enumerate(bounds):
                yield _series(f"{entry.name}_bucket", f"0+{i + 1}x{MINUTES}", **labels, le=bound)
            yield _series(f"{entry.name}_count", f"0+{len(bounds)}x{MINUTES}", **labels)
            yield _series(f"{entry.name}_sum", f"0+1x{MINUTES}", **labels)
        elif entry.name == "servewatch_model_info":
            # Version 1 serves throughout; version 2 starts two minutes before the evaluation.
            yield _series(entry.name, f"1x{MINUTES}", **labels)
            yield _series(entry.name, f"_x{MINUTES - 2} 1x2", **{**labels, "model_version": "2"})
        elif entry.name == "servewatch_rollout_weight":
            # Version 1 is the baseline; version 2 its candidate, at 25 % from two minutes
            # before the evaluation (a rollout step).
            yield _series(entry.name, f"75x{MINUTES}", **{**labels, "role": "baseline"})
            candidate = {**labels, "model_version": "2", "role": "candidate"}
            yield _series(entry.name, f"_x{MINUTES - 2} 25x2", **candidate)
        else:
            yield _series(
                entry.name,
                f"0+1x{MINUTES}" if entry.kind == "counter" else f"1x{MINUTES}",
                **labels,
            )


def _every_series():
    series = [s for entry in CATALOG for s in _catalog_series(entry)]
    alert = _alert("ServewatchClassShift", "firing", model_name="m", tenant="acme")
    return [*series, {**alert, "values": f"1x{MINUTES}"}]


def _non_nan_tests(queries):
    # `q == q` drops NaN samples, so absent() is empty only when `q` has a number to show.
    return [
        {
            "expr": f"absent(({evaluable(q)}) == ({evaluable(q)}))",
            "eval_time": f"{MINUTES}m",
            "exp_samples": [],
        }
        for q in queries
    ]


def test_every_query_shows_numbers_when_every_catalog_series_has_data(
    dashboards, rules_text, tmp_path
):
    queries = sorted({q for d in dashboards.values() for _, q in prometheus_queries(d)})
    assert len(queries) > 60
    result = promtool_test(tmp_path, rules_text, _every_series(), _non_nan_tests(queries))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shows_numbers_check_fails_on_a_query_without_data(rules_text, tmp_path):
    queries = ['sum(rate(servewatch_requests_total{outcome="no_such_outcome"}[5m]))']
    result = promtool_test(tmp_path, rules_text, _every_series(), _non_nan_tests(queries))
    assert result.returncode != 0
