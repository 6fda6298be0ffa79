"""Alert fixtures: the committed spec rendered once per session, and the Prometheus tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alerts.render import render, rule_groups
from alerts.rules import RuleGroup
from alerts.spec import AlertSpec, app_config_path, load_spec
from core.config import MonitorSchedule, load_app_config
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
ALERTS_DIR = ROOT / "alerts"


@pytest.fixture(scope="session")
def spec() -> AlertSpec:
    return load_spec()


@pytest.fixture(scope="session")
def schedules(spec: AlertSpec) -> dict[str, MonitorSchedule]:
    return dict(load_app_config(app_config_path(spec)).monitors.schedules)


@pytest.fixture(scope="session")
def groups(spec: AlertSpec, schedules: dict[str, MonitorSchedule]) -> list[RuleGroup]:
    return rule_groups(spec, schedules)


@pytest.fixture(scope="session")
def rendered(spec: AlertSpec, schedules: dict[str, MonitorSchedule]) -> dict[str, str]:
    return render(spec, schedules)


def tool(*names: str) -> str:
    """Path of a Prometheus tool under any of its names; skip without it (fail under CI)."""
    path = next((found for name in names if (found := shutil.which(name))), None)
    require(path is not None, f"{' or '.join(names)} is not installed")
    assert path is not None
    return path
