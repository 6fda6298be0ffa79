"""`servewatch db` and `servewatch audit verify` through the root command."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from typer.testing import CliRunner

from core.contracts import AuditEvent
from servewatch.cli import app
from storage.audit import append
from storage.engine import create_store_engine

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
