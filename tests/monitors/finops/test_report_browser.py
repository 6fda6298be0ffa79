"""The HTML report in headless Chromium: every section renders and every chart loads."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.monitors.finops.records import SECTIONS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHARTS = {"daily", "trend", "tenants", "models", "endpoints", "budgets"}


@pytest.fixture(scope="module")
def chromium() -> str:
    require(CHROMIUM is not None, "chromium is not installed")
    assert CHROMIUM is not None
    return CHROMIUM


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_every_section_renders_and_every_chart_loads(chromium, demo_report, tmp_path):
    page = demo_report["finops-2026-W47.html"]
    dom = run_chromium(
        chromium,
        tmp_path / "profile-dom",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ).stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded is not None, "the page's image check did not run"
    assert loaded[1] == loaded[2] == str(len(CHARTS))
    assert set(re.findall(r'id="chart-([a-z-]+)"', dom)) == CHARTS
    headings = [html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", dom)]
    assert headings == list(SECTIONS)
    assert "Usage cost on Wed 18 Nov" in dom  # the seeded spike is called out in the summary

    screenshot = tmp_path / "finops-2026-W47.png"
    run_chromium(
        chromium,
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        "--window-size=1280,4000",
        page.as_uri(),
    )
    assert screenshot.stat().st_size > 50_000  # a rendered page, not a blank one
