"""`servewatch db` and `servewatch audit verify` through the root command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from core.contracts import AuditEvent
from servewatch.cli import app
from storage.audit import append
from storage.engine import create_store_engine
from storage.rollups import fold_pending
from storage.writer import write_predictions
from tests.storage.records import make_records

runner = CliRunner()
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_audit_verify_says_intact_then_names_the_broken_block(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--database-url", url]).exit_code == 0
    engine = create_store_engine(url)
    for i in range(2):
        append(engine, [AuditEvent(kind="prediction", ts=NOW, request_id=f"r{i}")], now=NOW)
    intact = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert intact.exit_code == 0
    assert "intact: 2 blocks, 2 rows" in intact.output

    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("UPDATE audit_log SET request_id = 'forged' WHERE id = 2"))
    engine.dispose()
    broken = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert broken.exit_code == 1
    assert "broken at block 2" in broken.output


def test_audit_verify_on_an_unmigrated_store_says_what_to_do(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert result.exit_code == 2
    assert "servewatch db upgrade" in result.output


def _store_with_old_and_new_predictions(tmp_path: Path) -> str:
    """A store holding a block of 100-day-old predictions and one of an hour ago."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--database-url", url]).exit_code == 0
    now = datetime.now(UTC)
    engine = create_store_engine(url)
    for seed, age in ((1, timedelta(days=100)), (2, timedelta(hours=1))):
        write_predictions(engine, make_records(5, seed=seed, start=now - age), now=now - age)
    engine.dispose()
    return url


def _stored_predictions(url: str) -> int:
    engine = create_store_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM predictions")).scalar_one()
    engine.dispose()
    return int(count)


def test_db_prune_dry_run_says_what_would_go_and_deletes_nothing(tmp_path):
    url = _store_with_old_and_new_predictions(tmp_path)
    result = runner.invoke(
        app, ["db", "prune", "--keep-days", "30", "--dry-run", "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert "would delete 5 (audit blocks 1..1)" in result.output
    assert "monitor_results: kept (no retention)" in result.output
    assert _stored_predictions(url) == 10


def test_db_prune_deletes_old_predictions_and_verify_names_them_pruned(tmp_path):
    url = _store_with_old_and_new_predictions(tmp_path)
    arguments = ["--keep-days", "30", "--monitor-results-keep-days", "7", "--database-url", url]
    result = runner.invoke(app, ["db", "prune", *arguments])
    assert result.exit_code == 0, result.output
    assert ": deleted 5 (audit blocks 1..1)" in result.output
    assert "monitor_results before" in result.output
    assert _stored_predictions(url) == 5

    verified = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert verified.exit_code == 0, verified.output
    assert "the predictions of blocks 1..1 were pruned (5 rows, 1 prune)" in verified.output


def test_db_prune_drops_old_rollups_and_keeps_the_predictions(tmp_path):
    url = _store_with_old_and_new_predictions(tmp_path)
    engine = create_store_engine(url)
    fold_pending(engine)
    engine.dispose()
    arguments = ["--rollups-keep-days", "30", "--database-url", url]
    dry = runner.invoke(app, ["db", "prune", *arguments, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert ": would delete 5" in dry.output  # the old records' rows: one minute, five keys
    result = runner.invoke(app, ["db", "prune", *arguments])
    assert result.exit_code == 0, result.output
    assert "prediction_rollups before" in result.output
    assert ": deleted 5" in result.output
    assert "predictions: " not in result.output  # predictions were not asked for
    assert _stored_predictions(url) == 10


def test_db_fold_rollups_catches_the_rollups_up_once(tmp_path):
    url = _store_with_old_and_new_predictions(tmp_path)
    first = runner.invoke(app, ["db", "fold-rollups", "--database-url", url])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("folded 10 predictions")
    again = runner.invoke(app, ["db", "fold-rollups", "--database-url", url])
    assert again.output.startswith("folded 0 predictions")


def test_db_fold_rollups_on_a_store_not_migrated_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["db", "fold-rollups", "--database-url", url])
    assert result.exit_code == 1
    assert "servewatch db upgrade" in result.output


def test_db_prune_takes_its_retention_from_the_config(tmp_path, monkeypatch):
    url = _store_with_old_and_new_predictions(tmp_path)
    config = tmp_path / "servewatch.yaml"
    config.write_text("retention:\n  predictions_days: 30\n")
    monkeypatch.setenv("SERVEWATCH_CONFIG_FILE", str(config))
    result = runner.invoke(app, ["db", "prune", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert _stored_predictions(url) == 5


def test_db_prune_without_a_retention_says_what_to_give(tmp_path, monkeypatch):
    monkeypatch.delenv("SERVEWATCH_CONFIG_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = runner.invoke(app, ["db", "prune", "--database-url", url])
    assert result.exit_code == 2
    assert "give --keep-days, --monitor-results-keep-days or --rollups-keep-days" in result.output


def test_db_prune_refuses_a_retention_that_is_not_positive(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--database-url", url]).exit_code == 0
    result = runner.invoke(app, ["db", "prune", "--keep-days", "0", "--database-url", url])
    assert result.exit_code == 2
    assert "positive number of days" in result.output


def test_db_prune_on_an_unmigrated_store_says_what_to_do(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["db", "prune", "--keep-days", "30", "--database-url", url])
    assert result.exit_code == 1
    assert "servewatch db upgrade" in result.output
