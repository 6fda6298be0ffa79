"""Alert fixtures: the committed spec rendered once per session, and the Prometheus tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alerts.render import render, rule_groups
from alerts.rules import RuleGroup
from alerts.spec import AlertSpec, app_config_path, load_spec
from core.config import AppConfig, MonitorSchedule, load_app_config
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
ALERTS_DIR = ROOT / "alerts"


@pytest.fixture(scope="session")
def spec() -> AlertSpec:
    return load_spec()


@pytest.fixture(scope="session")
def app_config(spec: AlertSpec) -> AppConfig:
    """The app config the committed files are built for (examples/servewatch.yaml)."""
    return load_app_config(app_config_path(spec))


@pytest.fixture(scope="session")
def schedules(app_config: AppConfig) -> dict[str, MonitorSchedule]:
    return dict(app_config.monitors.schedules)


@pytest.fixture(scope="session")
def groups(spec: AlertSpec, app_config: AppConfig) -> list[RuleGroup]:
    return rule_groups(spec, app_config)


@pytest.fixture(scope="session")
def rendered(spec: AlertSpec, app_config: AppConfig) -> dict[str, str]:
    return render(spec, app_config)


def tool(*names: str) -> str:
    """Path of a Prometheus tool under any of its names; skip without it (fail under CI)."""
    path = next((found for name in names if (found := shutil.which(name))), None)
    require(path is not None, f"{' or '.join(names)} is not installed")
    assert path is not None
    return path
