"""What the four dashboards show, and the conventions every panel follows."""

import re

import pytest

from alerts.promql import catalog_labels, selectors
from alerts.render import alerts_of, rule_groups
from dashboards.render import GENERATED, prometheus_queries
from tests.dashboards.conftest import ROOT, panels

EXPECTED_TITLES = {
    "servewatch-serving": {
        "Request rate by endpoint",
        "Request latency p50 / p95 / p99",
        "Errors by class",
        "In-flight requests",
        "Queue depth",
        "Batch size",
        "Busy workers",
        "Prediction-log events",
        "Availability (SLI) by endpoint",
        "Error budget left: availability",
        "Error budget left: latency",
        "Burn rate: availability",
        "Burn rate: latency",
        "Request rate by tenant",
        "p99 latency by tenant",
        "Errors by tenant and class",
        "Server-side error ratio by tenant",
        "Rollout weight",
        "Requests, candidate beside baseline",
        "Server errors, candidate beside baseline",
        "p95 / p99 latency, candidate beside baseline",
        "Mean confidence, candidate beside baseline",
        "Class shares, candidate beside baseline",
        "Gateway-to-model latency p50 / p99 by service",
        "Model call errors by reason",
        "Model service calls in flight",
        "Model calls by service",
        "Model call error ratio by service",
    },
    "servewatch-model-quality": {
        "Confidence distribution over time",
        "Class shares over time",
        "Output-schema failures by reason",
        "confidence_drift: psi",
        "class_shift: js_distance",
        "schema_failures: failure_rate",
        "Monitor status",
    },
    "servewatch-triage": {
        "Latency p50 / p99",
        "Error ratio by class",
        "Saturation",
        "Drift verdicts",
        "confidence_drift: psi",
        "class_shift: psi",
    },
    "servewatch-finops": {
        "Cost by tenant",
        "Cost by model version",
        "Cost by endpoint",
        "Cost per 1,000 predictions",
        "Idle and attributed cost",
        "Weekly budget burn per tenant",
    },
}


def test_the_four_dashboards_have_their_panels(dashboards):
    assert set(dashboards) == set(EXPECTED_TITLES)
    for uid, titles in EXPECTED_TITLES.items():
        assert titles <= {p["title"] for p in panels(dashboards[uid])}, uid


def test_template_variables_for_datasource_model_and_tenant(dashboards):
    for uid, dashboard in dashboards.items():
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert {"datasource", "model", "tenant"} <= set(names), uid
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["includeAll"]
                assert variable["allValue"] == ".*"
                assert variable["current"]["value"] == ["$__all"]
    quality = [v["name"] for v in dashboards["servewatch-model-quality"]["templating"]["list"]]
    assert "version" in quality


def test_every_panel_has_a_unit_and_a_description(dashboards):
    for dashboard in dashboards.values():
        for panel in panels(dashboard):
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
            assert len(panel.get("description", "")) > 20, panel["title"]


def test_panels_tile_the_grid_without_overlap(dashboards):
    for uid, dashboard in dashboards.items():
        cells = set()
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), uid
        for panel in dashboard["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0, (uid, panel["title"])
            assert pos["x"] + pos["w"] <= 24, (uid, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, (uid, panel["title"])
                    cells.add((x, y))


def test_drift_panels_draw_the_configured_thresholds(dashboards, app_config):
    by_title = {p["title"]: p for p in panels(dashboards["servewatch-model-quality"])}
    for monitor, metrics in app_config.monitors.thresholds.items():
        for metric, threshold in metrics.items():
            panel = by_title[f"{monitor}: {metric}"]
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert [s["value"] for s in steps] == [None, threshold.warn, threshold.alert]
            assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_model_service_panels_draw_the_thresholds_of_their_alerts(dashboards, spec):
    by_title = {p["title"]: p for p in panels(dashboards["servewatch-serving"])}
    hop = spec.model_services
    for title, threshold in (
        ("Gateway-to-model latency p50 / p99 by service", hop.slow.threshold_seconds),
        ("Model call error ratio by service", hop.errors.ratio),
    ):
        defaults = by_title[title]["fieldConfig"]["defaults"]
        assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, threshold], title
        assert defaults["custom"]["thresholdsStyle"]["mode"] == "dashed", title
    rows = [p["title"] for p in dashboards["servewatch-serving"]["panels"] if p["type"] == "row"]
    assert "Model services (split topology)" in rows


def test_budget_colours_follow_the_alert_levels(dashboards):
    by_title = {p["title"]: p for p in panels(dashboards["servewatch-finops"])}
    steps = by_title["Weekly budget burn per tenant"]["fieldConfig"]["defaults"]["thresholds"]
    assert [s["value"] for s in steps["steps"]] == [None, 0.8, 1.0]


@pytest.mark.parametrize("uid", sorted(EXPECTED_TITLES))
def test_dashboards_carry_the_generated_mark_and_are_read_only(dashboards, uid):
    dashboard = dashboards[uid]
    assert dashboard["description"].endswith(GENERATED)
    assert "generated" in dashboard["tags"]
    assert dashboard["editable"] is False


def _selectors(panel):
    return [sel for t in panel["targets"] if "expr" in t for sel in selectors(t["expr"])]


def test_serving_panels_follow_the_endpoint_variable(dashboards, known):
    serving = dashboards["servewatch-serving"]
    names = [v["name"] for v in serving["templating"]["list"]]
    assert "endpoint" in names
    variable = next(v for v in serving["templating"]["list"] if v["name"] == "endpoint")
    assert variable["query"].endswith(", endpoint)")
    catalog = catalog_labels()
    filtered = 0
    for panel in panels(serving):
        for target in panel["targets"]:
            for selector in selectors(target.get("expr", "")):
                # Every series with an endpoint label, recorded ones included, is narrowed.
                recorded = known.get(selector.name, ()) is None
                if recorded or "endpoint" in catalog.get(selector.name, ()):
                    assert "endpoint" in selector.labels, (panel["title"], target["expr"])
                    assert 'endpoint=~"$endpoint"' in target["expr"]
                    filtered += 1
    assert filtered > 20


def test_budget_and_burn_panels_read_the_slo_recording_rules(dashboards, known, spec):
    by_title = {p["title"]: p for p in panels(dashboards["servewatch-serving"])}
    for objective in spec.slo.objectives:
        for title in (f"Error budget left: {objective.name}", f"Burn rate: {objective.name}"):
            names = {s.name for s in _selectors(by_title[title])}
            assert names, title
            # Only recorded series: the budget and burn follow the rules the alerts use.
            assert all(known[name] is None for name in names), (title, names)
            assert all(f"servewatch_slo_{objective.name}_errors" in n for n in names)
        burn = by_title[f"Burn rate: {objective.name}"]
        steps = burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
        factors = sorted({p.factor for b in spec.slo.burn_alerts for p in b.windows})
        assert [s["value"] for s in steps] == [None, *factors]
        assert steps[-1]["color"] == "red"


def test_triage_repeats_one_row_per_model_version(dashboards):
    triage = dashboards["servewatch-triage"]
    rows = [p for p in triage["panels"] if p["type"] == "row"]
    assert len(rows) == 1
    assert rows[0]["repeat"] == "version"
    assert "$version" in rows[0]["title"]
    variable = next(v for v in triage["templating"]["list"] if v["name"] == "version")
    assert variable["multi"]
    assert variable["includeAll"]
    assert {"model", "tenant", "endpoint"} <= {v["name"] for v in triage["templating"]["list"]}
    for panel in panels(triage):
        for selector in _selectors(panel):
            if "model_version" in catalog_labels().get(selector.name, ()):
                assert "model_version" in selector.labels, panel["title"]


def test_triage_puts_platform_signals_above_drift_and_shift(dashboards):
    by_title = {p["title"]: p for p in panels(dashboards["servewatch-triage"])}

    def series(title):
        return {s.name for s in _selectors(by_title[title])}

    assert "servewatch_request_duration_seconds_bucket" in series("Latency p50 / p99")
    assert series("Error ratio by class") == {"servewatch_requests_total"}
    assert {"servewatch_in_flight_requests", "servewatch_queue_depth"} <= series("Saturation")
    assert series("Drift verdicts") == {"servewatch_monitor_status"}
    verdicts = by_title["Drift verdicts"]["targets"][0]["expr"]
    assert 'monitor=~"confidence_drift|class_shift"' in verdicts
    platform = [by_title[t] for t in ("Latency p50 / p99", "Error ratio by class", "Saturation")]
    quality = [by_title[t] for t in ("Drift verdicts", "confidence_drift: psi", "class_shift: psi")]
    assert max(p["gridPos"]["y"] for p in platform) < min(p["gridPos"]["y"] for p in quality)
    assert sorted(p["gridPos"]["x"] for p in platform) == [0, 8, 16]


def test_every_dashboard_marks_releases_rollout_steps_and_firing_alerts(dashboards):
    for uid, dashboard in dashboards.items():
        marks = {a["name"]: a for a in dashboard["annotations"]["list"]}
        assert set(marks) == {"Releases", "Rollout steps", "Alerts"}, uid
        assert "servewatch_model_info" in marks["Releases"]["expr"]
        assert 'servewatch_rollout_weight{role="candidate"' in marks["Rollout steps"]["expr"]
        assert marks["Alerts"]["expr"].startswith('ALERTS{alertstate="firing"')
        assert all(a["datasource"]["uid"] == "${datasource}" for a in marks.values())
        annotated = {where for where, _ in prometheus_queries(dashboard)}
        assert {"annotation 'Releases'", "annotation 'Alerts'"} <= annotated


ANCHOR = re.compile(r"^(?P<base>.+)#(?P<anchor>[a-z0-9]+)$")


def _links(dashboards):
    return [
        (uid, panel["title"], link)
        for uid, dashboard in dashboards.items()
        for panel in panels(dashboard)
        for link in panel.get("links", [])
    ]


def test_runbook_links_point_at_a_section_for_a_real_alert(dashboards, app_config, spec):
    alerts = {a.name.lower(): a.name for a in alerts_of(rule_groups(spec, app_config))}
    sections = set(re.findall(r"^## (\w+)$", (ROOT / "docs" / "runbooks.md").read_text(), re.M))
    links = _links(dashboards)
    assert len(links) > 20
    for uid, title, link in links:
        match = ANCHOR.match(link["url"])
        assert match, (uid, title, link["url"])
        assert match["base"] == app_config.alerting.runbook_base_url
        assert match["anchor"] in alerts, (uid, title, link["url"])
        assert alerts[match["anchor"]] in sections, (uid, title)
        assert link["title"] == f"Runbook: {alerts[match['anchor']]}"


@pytest.mark.parametrize(
    ("uid", "title", "alerts"),
    [
        (
            "servewatch-serving",
            "Burn rate: availability",
            {"ServewatchAvailabilityFastBurn", "ServewatchAvailabilitySlowBurn"},
        ),
        (
            "servewatch-serving",
            "p99 latency by tenant",
            {"ServewatchLatencyFastBurn", "ServewatchLatencySlowBurn"},
        ),
        ("servewatch-serving", "Dropped records", {"ServewatchPredictionLogDropping"}),
        ("servewatch-model-quality", "confidence_drift: psi", {"ServewatchConfidenceDrift"}),
        ("servewatch-model-quality", "class_shift: js_distance", {"ServewatchClassShift"}),
        (
            "servewatch-model-quality",
            "Output-schema failures by reason",
            {"ServewatchOutputSchemaFailures"},
        ),
        (
            "servewatch-triage",
            "Drift verdicts",
            {"ServewatchConfidenceDrift", "ServewatchClassShift"},
        ),
        (
            "servewatch-triage",
            "Error ratio by class",
            {"ServewatchAvailabilityFastBurn", "ServewatchAvailabilitySlowBurn"},
        ),
        (
            "servewatch-finops",
            "Weekly budget burn per tenant",
            {"ServewatchTenantBudgetNearlySpent", "ServewatchTenantBudgetExceeded"},
        ),
        (
            "servewatch-serving",
            "Server errors, candidate beside baseline",
            {"ServewatchCanaryErrorsWorse"},
        ),
        (
            "servewatch-serving",
            "p95 / p99 latency, candidate beside baseline",
            {"ServewatchCanaryLatencyWorse"},
        ),
        (
            "servewatch-serving",
            "Mean confidence, candidate beside baseline",
            {"ServewatchCanaryDrift"},
        ),
        ("servewatch-serving", "Queue depth", set()),
        (
            "servewatch-serving",
            "Gateway-to-model latency p50 / p99 by service",
            {"ServewatchModelServiceSlow"},
        ),
        (
            "servewatch-serving",
            "Model call error ratio by service",
            {"ServewatchModelServiceErrors", "ServewatchModelServiceDown"},
        ),
    ],
)
def test_panels_link_the_runbooks_of_the_alerts_that_watch_them(dashboards, uid, title, alerts):
    panel = next(p for p in panels(dashboards[uid]) if p["title"] == title)
    linked = {link["title"].removeprefix("Runbook: ") for link in panel.get("links", [])}
    assert linked == alerts
