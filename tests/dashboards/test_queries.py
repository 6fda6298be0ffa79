"""Every dashboard query parses as PromQL (promtool) and selects only catalog series."""

import re
import subprocess

import pytest
import yaml

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


def test_every_query_selects_only_catalog_series(dashboards):
    for dashboard in dashboards.values():
        check_queries(dashboard)


def test_a_query_outside_the_catalog_is_refused(dashboards):
    broken = {
        "title": "t",
        "panels": [
            {
                "type": "timeseries",
                "title": "p",
                "targets": [
                    {"datasource": {"type": "prometheus"}, "expr": "rate(servewatch_nope[5m])"}
                ],
            }
        ],
    }
    with pytest.raises(CatalogError, match="unknown series servewatch_nope"):
        check_queries(broken)


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


def _labels(mapping):
    return "{" + ", ".join(f'{k}="{v}"' for k, v in mapping.items()) + "}"


def _requests(endpoint, outcome, per_minute):
    labels = f'endpoint="{endpoint}", model_name="m", model_version="1", tenant="acme"'
    return {
        "series": f'servewatch_requests_total{{{labels}, outcome="{outcome}"}}',
        "values": f"0+{per_minute}x10",
    }


def _classes(name, per_minute):
    labels = f'model_name="m", model_version="1", tenant="acme", predicted_class="{name}"'
    return {
        "series": f"servewatch_predicted_class_total{{{labels}}}",
        "values": f"0+{per_minute}x10",
    }


EVALUATIONS = [
    (
        "servewatch-serving",
        "Availability (SLI) by endpoint",
        [
            _requests("classify_ticket", "ok", 90),
            _requests("classify_ticket", "model_error", 10),
            _requests("classify_ticket", "validation_error", 50),
            _requests("classify_tickets", "ok", 100),
        ],
        [({"endpoint": "classify_ticket"}, 0.9), ({"endpoint": "classify_tickets"}, 1)],
    ),
    (
        "servewatch-model-quality",
        "Class shares over time",
        [_classes("billing", 30), _classes("outage", 10)],
        [
            ({"model_name": "m", "predicted_class": "billing"}, 0.75),
            ({"model_name": "m", "predicted_class": "outage"}, 0.25),
        ],
    ),
    (
        "servewatch-finops",
        "Weekly budget burn per tenant",
        [
            {"series": 'servewatch_tenant_week_cost_usd{tenant="acme"}', "values": "4+0x10"},
            {"series": 'servewatch_tenant_weekly_budget_usd{tenant="acme"}', "values": "5+0x10"},
            {"series": 'servewatch_tenant_week_cost_usd{tenant="globex"}', "values": "1+0x10"},
        ],
        [({"tenant": "acme"}, 0.8)],
    ),
]


@pytest.mark.parametrize(("uid", "title", "series", "expected"), EVALUATIONS)
def test_panel_queries_compute_what_their_titles_say(
    dashboards, tmp_path, uid, title, series, expected
):
    panel = next(p for p in panels(dashboards[uid]) if p["title"] == title)
    expr = as_plain_promql(panel["targets"][0]["expr"]).replace('"x"', '".*"')
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        # Rounded: the ratios of rates are exact only to a few ulps.
                        "expr": f"round({expr}, 0.0001)",
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": _labels(lbl), "value": value} for lbl, value in expected
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "panel.tests.yaml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
