"""Generated dashboards validate against Grafana's schemas; grafanalib's raw output does not."""

import json

import pytest
from grafanalib import core
from grafanalib._gen import DashboardEncoder

from alerts.spec import load_spec
from dashboards.layout import layout
from dashboards.normalize import SCHEMA_VERSION, normalize_dashboard, normalize_panel
from dashboards.render import definitions
from tests.dashboards.conftest import panels, validator


def _errors(validator_, instance):
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator_.iter_errors(instance)]


def test_dashboards_validate_against_the_dashboard_schema(dashboards):
    schema = validator("dashboard")
    for uid, dashboard in dashboards.items():
        assert _errors(schema, dashboard) == [], uid
        assert dashboard["schemaVersion"] == SCHEMA_VERSION >= 39


def test_annotations_row_repeats_and_panel_links_validate_against_their_definitions(dashboards):
    annotation, link, row = (
        validator("dashboard", d) for d in ("AnnotationQuery", "DashboardLink", "RowPanel")
    )
    links = repeated = 0
    for uid, dashboard in dashboards.items():
        for query in dashboard["annotations"]["list"]:
            assert _errors(annotation, query) == [], (uid, query["name"])
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                assert _errors(row, panel) == [], (uid, panel["title"])
                repeated += "repeat" in panel
            for item in panel.get("links", []):
                assert _errors(link, item) == [], (uid, panel["title"])
                links += 1
    assert links > 20
    assert repeated == 1


def test_panel_options_and_field_config_validate_against_their_panel_kind(dashboards):
    for uid, dashboard in dashboards.items():
        for panel in panels(dashboard):
            kind = panel["type"]
            where = f"{uid} / {panel['title']}"
            assert _errors(validator(kind, "Options"), panel["options"]) == [], where
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            if kind != "stat":  # the stat kind has no custom field config
                assert _errors(validator(kind, "FieldConfig"), custom) == [], where


def test_prometheus_queries_validate_against_the_prometheus_query_schema(dashboards):
    query = validator("prometheus", "Dataquery")
    for dashboard in dashboards.values():
        for panel in panels(dashboard):
            for target in panel["targets"]:
                if target["datasource"]["type"] == "prometheus":
                    assert _errors(query, target) == [], panel["title"]


def test_panel_kinds_in_use_all_have_a_schema_here(dashboards):
    kinds = {p["type"] for d in dashboards.values() for p in panels(d)}
    assert kinds == {"timeseries", "stat", "piechart", "heatmap", "table"}


@pytest.fixture(scope="module")
def raw_grafanalib(app_config):
    """The Serving dashboard as grafanalib writes it, before normalization."""
    definition = definitions(load_spec(), app_config)[0]
    dashboard = core.Dashboard(
        title=definition.title,
        uid=definition.uid,
        panels=layout(definition.rows),
        templating=core.Templating(list=list(definition.variables)),
    ).auto_panel_ids()
    return json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))


def test_raw_grafanalib_output_fails_the_schema_and_normalizing_fixes_it(raw_grafanalib):
    schema = validator("dashboard")
    assert raw_grafanalib["schemaVersion"] == 12
    assert _errors(schema, raw_grafanalib)
    assert _errors(schema, normalize_dashboard(raw_grafanalib)) == []


def test_normalize_maps_legacy_thresholds_and_drops_legacy_keys():
    panel = normalize_panel(
        {
            "type": "stat",
            "span": 4,
            "editable": True,
            "fieldConfig": {
                "defaults": {
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            {
                                "op": "gt",
                                "yaxis": "left",
                                "color": "green",
                                "index": 0,
                                "value": "null",
                            },
                            {"op": "gt", "color": "red", "line": True, "index": 1, "value": 80.0},
                        ],
                    }
                }
            },
            "targets": [
                {"expr": "up", "query": "up", "step": 10, "intervalFactor": 2, "refId": "A"}
            ],
        }
    )
    assert "span" not in panel
    assert "editable" not in panel
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "red", "value": 80.0},
    ]
    assert panel["fieldConfig"]["overrides"] == []
    assert panel["targets"] == [{"expr": "up", "refId": "A", "editorMode": "code"}]
    assert panel["options"]["wideLayout"] is True
