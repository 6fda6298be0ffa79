"""`servewatch export parquet` on the real store: files and rows printed, bad input in one line."""

from datetime import timedelta

import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from servewatch.cli import app
from storage.writer import write_predictions
from tests.storage.records import T0, make_records

runner = CliRunner()
FROM, TO = (T0 - timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=1)).isoformat()


@pytest.fixture
def loaded_url(store_engine, store_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    for name in ("SERVEWATCH_DATABASE_URL", "SERVEWATCH_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    # 600 rows every 10 s from 23:10 the day before: two day partitions inside the span.
    write_predictions(store_engine, make_records(600, start=T0 - timedelta(minutes=50), step_s=10))
    return store_url


def _export(url, out, *extra):
    args = ["export", "parquet", "--from", FROM, "--to", TO, "--out", str(out)]
    return runner.invoke(app, [*args, "--database-url", url, *extra])


def test_export_prints_each_file_with_its_rows(loaded_url, tmp_path):
    result = _export(loaded_url, tmp_path / "out", "--chunk-rows", "100")
    assert result.exit_code == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [path.split("/")[-2] for path, _ in lines] == ["day=2026-11-15", "day=2026-11-16"]
    assert sum(int(rows) for _, rows in lines) == 600
    assert "600 predictions in 2 file(s)" in result.stderr
    table = ds.dataset(tmp_path / "out", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 600


def test_an_overlapping_export_is_refused_in_one_line(loaded_url, tmp_path):
    assert _export(loaded_url, tmp_path / "out").exit_code == 0
    later = (T0 + timedelta(minutes=10)).isoformat()
    args = ["export", "parquet", "--from", later, "--to", TO]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "out"), "--database-url", loaded_url]
    )
    assert result.exit_code == 2
    assert "overlaps the export" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_store_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    result = _export(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "out")
    assert result.exit_code == 1
    assert "no store at" in result.stderr
    assert not (tmp_path / "out").exists()
