"""Fixtures of the monitor tests: an isolated settings environment."""

from __future__ import annotations

import pytest


@pytest.fixture
def isolated_settings(monkeypatch, tmp_path):
    """SERVEWATCH_* settings pointing at a fresh home, with no config file or database URL."""
    for name in ("SERVEWATCH_DATABASE_URL", "SERVEWATCH_CONFIG_FILE", "SERVEWATCH_MODELS_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
