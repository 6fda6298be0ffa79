"""What the three dashboards show, and the conventions every panel follows."""

import pytest

from dashboards.render import GENERATED
from tests.dashboards.conftest import panels

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
    "servewatch-finops": {
        "Cost by tenant",
        "Cost by model version",
        "Cost by endpoint",
        "Cost per 1,000 predictions",
        "Idle and attributed cost",
        "Weekly budget burn per tenant",
    },
}


def test_the_three_dashboards_have_their_panels(dashboards):
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
