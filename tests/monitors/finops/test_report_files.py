"""Report files (names, atomic writes, Markdown) and the `finops` command."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import typer
import yaml
from typer.testing import CliRunner

from core.files import write_atomically
from monitors.finops.command import finops
from monitors.finops.report import WeekNotOverError, write_weekly_report
from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.writer import write_predictions
from tests.monitors.finops.records import HAND_CONFIG, HAND_RECORDS, SECTIONS


@pytest.fixture(scope="module")
def hand_store(tmp_path_factory):
    """A SQLite store holding the hand-priced records."""
    url = f"sqlite:///{tmp_path_factory.mktemp('finops-hand') / 'store.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    write_predictions(engine, HAND_RECORDS)
    engine.dispose()
    return url


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """The `finops` function as a Typer command, configured with the hand-priced config."""
    config = tmp_path / "servewatch.yaml"
    config.write_text(yaml.safe_dump(HAND_CONFIG.model_dump(mode="json")))
    monkeypatch.setenv("SERVEWATCH_CONFIG_FILE", str(config))
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SERVEWATCH_DATABASE_URL", raising=False)
    app = typer.Typer()
    app.command()(finops)

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args))

    return invoke


def test_files_carry_the_week_and_are_replaced_atomically(hand_store, tmp_path):
    engine = create_store_engine(hand_store)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    try:
        first = write_weekly_report(engine, HAND_CONFIG, "2026-W47", tmp_path, now=now)
        stale = (tmp_path / "finops-2026-W47.md").read_text()
        second = write_weekly_report(engine, HAND_CONFIG, "2026-W47", tmp_path, now=now)
    finally:
        engine.dispose()
    names = sorted(p.name for p in first)
    assert names == sorted(p.name for p in second)
    assert "finops-2026-W47.html" in names
    assert "finops-2026-W47.md" in names
    assert "finops-2026-W47-by-tenant.csv" in names
    assert len(names) == 10
    assert first[-1].name == "finops-2026-W47.html"  # written last: marks the report complete
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary files left
    assert (tmp_path / "finops-2026-W47.md").read_text() == stale


def test_an_atomic_write_that_fails_leaves_the_old_file(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomically(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_markdown_has_every_section_and_the_summary(hand_store, tmp_path):
    engine = create_store_engine(hand_store)
    try:
        write_weekly_report(
            engine, HAND_CONFIG, "2026-W47", tmp_path, now=datetime(2026, 11, 25, tzinfo=UTC)
        )
    finally:
        engine.dispose()
    markdown = (tmp_path / "finops-2026-W47.md").read_text()
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    assert headings == ["FinOps report 2026-W47", *SECTIONS]
    assert "- Spend rose 17% week over week to $8.41" in markdown
    assert "| initech | $0.50 | $2.40 |" in markdown


def test_a_week_that_has_not_ended_is_refused(hand_store, tmp_path):
    engine = create_store_engine(hand_store)
    try:
        with pytest.raises(WeekNotOverError, match="has not ended"):
            write_weekly_report(
                engine, HAND_CONFIG, "2026-W47", tmp_path, now=datetime(2026, 11, 22, tzinfo=UTC)
            )
    finally:
        engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_the_report(cli, hand_store, tmp_path):
    out = tmp_path / "reports"
    result = cli("--week", "2026-W47", "--out-dir", str(out), "--database-url", hand_store)
    assert result.exit_code == 0, result.output
    assert (out / "finops-2026-W47.html").is_file()
    assert str(out / "finops-2026-W47.md") in result.stdout.splitlines()


def test_cli_refuses_a_malformed_week(cli, tmp_path):
    out = tmp_path / "reports"
    result = cli("--week", "2026-47", "--out-dir", str(out), "--database-url", "sqlite://")
    assert result.exit_code == 2
    assert "malformed week '2026-47': expected YYYY-Www" in result.stderr
    assert not out.exists()


def test_cli_refuses_a_week_that_has_not_ended(cli, tmp_path):
    result = cli("--week", "2999-W01", "--out-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "has not ended yet" in result.stderr


def test_cli_reports_an_unreachable_store(cli, tmp_path):
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=3"
    result = cli("--week", "2026-W47", "--out-dir", str(tmp_path), "--database-url", unreachable)
    assert result.exit_code == 1
    assert "cannot read the store at postgresql+psycopg://postgres@127.0.0.1:9/nowhere" in (
        result.stderr
    )
    assert not (tmp_path / "finops-2026-W47.html").exists()


def test_cli_refuses_an_invalid_database_url(cli, tmp_path):
    result = cli("--week", "2026-W47", "--out-dir", str(tmp_path / "r"), "--database-url", "nope")
    assert result.exit_code == 2
    assert "invalid database URL" in result.stderr


def test_the_cli_reads_the_config_it_is_given(tmp_path):
    from core.config import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants:\n  acme:\n    weekly_budget_usd: -5\n")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ConfigError, match="weekly_budget_usd"):
        finops(week="2026-W47", out_dir=tmp_path, database_url=url, config=bad)
