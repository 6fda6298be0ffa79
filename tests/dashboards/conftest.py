"""Dashboard fixtures: the definitions rendered once per session, and the copied schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from alerts.render import render_rules, rule_groups
from alerts.spec import AlertSpec, app_config_path, load_spec
from core.config import AppConfig, load_app_config
from dashboards.render import Known, known_series, render

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "dashboards"
SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture(scope="session")
def spec() -> AlertSpec:
    return load_spec()


@pytest.fixture(scope="session")
def app_config(spec: AlertSpec) -> AppConfig:
    return load_app_config(app_config_path(spec))


@pytest.fixture(scope="session")
def rendered(spec: AlertSpec, app_config: AppConfig) -> dict[str, str]:
    return render(spec, app_config)


@pytest.fixture(scope="session")
def known(spec: AlertSpec, app_config: AppConfig) -> Known:
    return known_series(spec, app_config)


@pytest.fixture(scope="session")
def rules_text(spec: AlertSpec, app_config: AppConfig) -> str:
    """The recording and alerting rules the dashboards go with, as Prometheus loads them."""
    return render_rules(rule_groups(spec, app_config))


@pytest.fixture(scope="session")
def dashboards(rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    """uid → dashboard JSON model."""
    models = [json.loads(text) for text in rendered.values()]
    return {d["uid"]: d for d in models}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that is not a row."""
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def validator(kind: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    """A validator for a copied schema, or for one of its definitions."""
    schema = json.loads((SCHEMAS / f"{kind}.jsonschema.json").read_text())
    if definition is not None:
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    return jsonschema.Draft7Validator(schema)
