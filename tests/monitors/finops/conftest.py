"""A seeded month of traffic and its rendered FinOps report, shared by this folder's tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from monitors.finops.report import write_weekly_report
from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.writer import write_predictions
from tests.monitors.finops.records import DEMO_CONFIG, demo_records

DEMO_WEEK = "2026-W47"
DEMO_NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
DEMO_SPIKE = date(2026, 11, 18)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five weeks of seeded traffic (a spike on Wed 18 Nov) and the report for 2026-W47."""
    folder = tmp_path_factory.mktemp("finops-demo")
    url = f"sqlite:///{folder / 'store.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    try:
        write_predictions(engine, demo_records(date(2026, 10, 19), date(2026, 11, 22), DEMO_SPIKE))
        paths = write_weekly_report(engine, DEMO_CONFIG, DEMO_WEEK, folder / "out", now=DEMO_NOW)
    finally:
        engine.dispose()
    return {path.name: path for path in paths}
