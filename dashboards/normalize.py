"""grafanalib's raw JSON (schemaVersion 12, legacy keys) → a current Grafana dashboard model.

grafanalib 0.7.1 writes keys Grafana dropped long ago (rows, style, span, target `step`...),
nulls where the schema wants a value or nothing, legacy option shapes, and leaves out options
that current panels require. This maps all of that onto schemaVersion 39 (Grafana 10.4 / 11).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

SCHEMA_VERSION = 39
LEGACY_DASHBOARD_KEYS = ("__inputs", "hideControls", "rows", "sharedCrosshair", "style", "gnetId")
LEGACY_PANEL_KEYS = ("cacheTimeout", "editable", "error", "height", "minSpan", "span")
LEGACY_KEYS_BY_TYPE: Mapping[str, tuple[str, ...]] = {
    "heatmap": (
        "cards",
        "color",
        "dataFormat",
        "heatmap",
        "hideZeroBuckets",
        "highlightCards",
        "legend",
        "reverseYBuckets",
        "tooltip",
        "xAxis",
        "yAxis",
        "xBucketNumber",
        "xBucketSize",
        "yBucketBound",
        "yBucketNumber",
        "yBucketSize",
    ),
    "table": ("columns", "fontSize", "mappings", "color", "styles"),
}
# grafanalib gives rows every panel attribute; a row is only these.
ROW_KEYS = ("type", "collapsed", "title", "datasource", "gridPos", "id", "panels", "repeat")
LEGACY_TARGET_KEYS = ("query", "target", "metric", "step", "intervalFactor")
LEGACY_VARIABLE_KEYS = ("useTags", "tagsQuery", "tagValuesQuery")
INTERVAL_VARIABLE_KEYS = ("auto", "auto_min", "auto_count")
ALL_VALUE = "$__all"

# Grafana's defaults for options the current panel schemas require and grafanalib leaves out.
OPTION_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "timeseries": {
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
        "tooltip": {"mode": "single", "sort": "none"},
    },
    "stat": {
        "wideLayout": True,
        "showPercentChange": False,
        "percentChangeColorMode": "standard",
        "orientation": "auto",
    },
    "piechart": {
        "legend": {"showLegend": True, "calcs": []},
        "tooltip": {"sort": "none"},
        "orientation": "auto",
    },
    "table": {
        "frameIndex": 0,
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "countRows": False},
    },
}
CUSTOM_DEFAULTS: Mapping[str, Mapping[str, Any]] = {"table": {"align": "auto", "inspect": False}}
# Deprecated field options grafanalib still writes; Grafana's default (cell type "auto") applies.
LEGACY_CUSTOM_KEYS: Mapping[str, tuple[str, ...]] = {"table": ("displayMode",)}


def normalize_dashboard(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of grafanalib's dashboard JSON that Grafana's current schema accepts."""
    dashboard: dict[str, Any] = _drop_nulls(copy.deepcopy(dict(raw)))
    for key in LEGACY_DASHBOARD_KEYS:
        dashboard.pop(key, None)
    if dashboard.get("id") is None:
        dashboard.pop("id", None)
    dashboard["schemaVersion"] = SCHEMA_VERSION
    dashboard["timepicker"] = {
        k: v for k, v in dashboard.get("timepicker", {}).items() if k != "time_options"
    }
    dashboard["panels"] = [normalize_panel(p) for p in dashboard.get("panels", [])]
    templating = dashboard.setdefault("templating", {"list": []})
    templating["list"] = [normalize_variable(v) for v in templating.get("list", [])]
    dashboard.setdefault("annotations", {"list": []})
    return dashboard


def normalize_panel(panel: Mapping[str, Any]) -> dict[str, Any]:
    """One panel (or row) in the current model."""
    panel = dict(panel)
    kind = panel.get("type", "")
    if kind == "row":
        row = {key: panel[key] for key in ROW_KEYS if key in panel}
        row.setdefault("collapsed", False)
        row["panels"] = [normalize_panel(p) for p in row.get("panels", [])]
        return row
    for key in LEGACY_PANEL_KEYS + LEGACY_KEYS_BY_TYPE.get(kind, ()):
        panel.pop(key, None)
    panel["fieldConfig"] = _field_config(kind, panel.get("fieldConfig", {}))
    panel["options"] = _merge(OPTION_DEFAULTS.get(kind, {}), panel.get("options") or {})
    panel["targets"] = [normalize_target(t) for t in panel.get("targets", [])]
    return panel


def normalize_target(target: Mapping[str, Any]) -> dict[str, Any]:
    """A query: legacy keys out, editor mode in, range/instant explicit for Prometheus."""
    target = {k: v for k, v in target.items() if k not in LEGACY_TARGET_KEYS}
    for key in ("expr", "interval", "legendFormat"):
        if target.get(key) == "":
            target.pop(key)
    target["editorMode"] = "code"
    if target.get("datasource", {}).get("type") == "prometheus":
        target["range"] = not target.get("instant", False)
    else:
        target.pop("instant", None)
    return target


def normalize_variable(variable: Mapping[str, Any]) -> dict[str, Any]:
    """A template variable: datasource as a reference, `current` in the current shape."""
    variable = {k: v for k, v in variable.items() if k not in LEGACY_VARIABLE_KEYS}
    if variable.get("type") != "interval":
        for key in INTERVAL_VARIABLE_KEYS:
            variable.pop(key, None)
    if variable.get("type") == "query" and isinstance(variable.get("query"), str):
        variable["definition"] = variable["query"]
    current = variable.get("current") or {}
    value = current.get("value")
    if value is None:
        variable.pop("current", None)
    elif value == ALL_VALUE:
        all_text, all_value = ("All", ALL_VALUE)
        multi = variable.get("multi", False)
        variable["current"] = {
            "selected": True,
            "text": [all_text] if multi else all_text,
            "value": [all_value] if multi else all_value,
        }
    else:
        variable["current"] = {k: v for k, v in current.items() if k != "tags"}
    return variable


def _field_config(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    defaults = dict(raw.get("defaults", {}))
    thresholds = dict(defaults.get("thresholds") or {})
    steps = thresholds.get("steps") or [{"color": "green", "value": None}]
    defaults["thresholds"] = {
        "mode": thresholds.get("mode", "absolute"),
        "steps": [_threshold_step(s) for s in steps],
    }
    custom = {
        k: v
        for k, v in (defaults.get("custom") or {}).items()
        if k not in LEGACY_CUSTOM_KEYS.get(kind, ())
    }
    custom = _merge(CUSTOM_DEFAULTS.get(kind, {}), custom)
    if custom:
        defaults["custom"] = custom
    else:
        defaults.pop("custom", None)
    return {"defaults": defaults, "overrides": list(raw.get("overrides", []))}


def _threshold_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """grafanalib's Threshold (op, yaxis, line, index, "null") → {color, value}."""
    value = step.get("value")
    return {"color": step["color"], "value": None if value in (None, "null") else value}


def _merge(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` over `defaults`, recursively for nested mappings."""
    merged = dict(defaults)
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _drop_nulls(node: Any) -> Any:
    """Remove null members (the schema wants a value or no key), except threshold values."""
    if isinstance(node, dict):
        kept = {}
        for key, value in node.items():
            if value is None and not _is_threshold_value(key, node):
                continue
            kept[key] = _drop_nulls(value)
        return kept
    if isinstance(node, list):
        return [_drop_nulls(item) for item in node]
    return node


def _is_threshold_value(key: str, node: Mapping[str, Any]) -> bool:
    return key == "value" and "color" in node
