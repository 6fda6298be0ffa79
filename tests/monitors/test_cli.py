"""`servewatch monitor run|schedule|backfill` through the Typer apps, on the real store."""

import json
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.contracts import MONITOR_NAMES, RESULT_KEYS
from monitors.cli import monitor_app
from storage.engine import create_store_engine
from storage.schema import monitor_results
from tests.monitors import traffic

START, END = (t.isoformat().replace("+00:00", "Z") for t in traffic.WINDOW)
runner = CliRunner()


@pytest.fixture
def loaded_url(store_engine, store_url, isolated_settings):
    traffic.register_baseline(store_engine)
    traffic.load(store_engine, traffic.window_traffic(), traffic.previous_traffic())
    return store_url


def _invoke(*args):
    return runner.invoke(monitor_app, list(args))


def _stored(url):
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(monitor_results)).scalar()
    finally:
        engine.dispose()


def test_run_prints_the_contract_json_and_stores_the_same_rows_once(loaded_url):
    result = _invoke("run", "--start", START, "--end", END, "--database-url", loaded_url, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows
    assert all(set(RESULT_KEYS) <= set(row) for row in rows)
    assert {row["monitor"] for row in rows} == set(MONITOR_NAMES)
    assert {row["status"] for row in rows} <= {"ok", "warn", "alert", "insufficient_data"}
    assert {"*", "acme", "globex", "initech"} <= {row["tenant"] for row in rows}
    assert all(row["window_start"] == START and row["window_end"] == END for row in rows)
    assert _stored(loaded_url) == len(rows)
    again = _invoke("run", "--start", START, "--end", END, "--database-url", loaded_url, "--json")
    assert again.exit_code == 0
    assert _stored(loaded_url) == len(rows)


def test_run_against_a_reference_window_and_one_monitor(loaded_url):
    reference = [t.isoformat() for t in traffic.PREVIOUS]
    result = _invoke(
        "run", "--start", START, "--end", END, "--database-url", loaded_url, "--json",
        "--reference-start", reference[0], "--reference-end", reference[1],
        "--monitor", "class_shift", "--model", traffic.MODEL,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["monitor"] for row in rows} == {"class_shift"}
    assert all(row["details"]["reference"] == "window" for row in rows)


def test_run_prints_a_table_without_json(loaded_url):
    result = _invoke("run", "--start", START, "--end", END, "--database-url", loaded_url)
    assert result.exit_code == 0
    assert "confidence_drift" in result.stdout
    assert "alert" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", END, "--end", START], "empty or inverted window"),
        (["--start", "last tuesday", "--end", END], "not an ISO 8601 time"),
        (["--start", START, "--end", END, "--model", "fraud_model"], "unknown model 'fraud_model'"),
        (["--start", START, "--end", END, "--monitor", "latency"], "unknown monitor(s) latency"),
        (["--start", START, "--end", END, "--reference-start", START], "go together"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(loaded_url, args, message):
    result = _invoke("run", *args, "--database-url", loaded_url, "--json")
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert _stored(loaded_url) == 0


def test_an_unreachable_store_exits_1(isolated_settings):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    result = _invoke("run", "--start", START, "--end", END, "--database-url", url)
    assert result.exit_code == 1
    assert "cannot reach the store" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unmigrated_store_asks_for_db_upgrade(isolated_settings, tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    result = _invoke("run", "--start", START, "--end", END, "--database-url", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert "lacks table(s) predictions" in result.stderr
    assert "servewatch db upgrade" in result.stderr


def test_a_missing_sqlite_store_is_not_created(isolated_settings, tmp_path):
    path = tmp_path / "missing.db"
    result = _invoke("run", "--start", START, "--end", END, "--database-url", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert "no store at" in result.stderr
    assert not path.exists()


def test_a_malformed_config_exits_2(loaded_url, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "monitors:\n  thresholds:\n    class_shift:\n      psi: {warn: 0.5, alert: 0.1}\n"
    )
    result = _invoke(
        "run", "--start", START, "--end", END, "--database-url", loaded_url, "--config", str(bad)
    )
    assert result.exit_code == 2
    assert "configuration error" in result.stderr
    assert "alert threshold" in result.stderr


def test_schedule_once_runs_the_due_windows_like_a_cron_job(
    loaded_url, tmp_path, isolated_settings
):
    config = tmp_path / "servewatch.yaml"
    config.write_text(
        "monitors:\n  schedules:\n"
        + "".join(f"    {m}: {{every_seconds: 600, window_seconds: 3600}}\n" for m in MONITOR_NAMES)
    )
    args = ("schedule", "--once", "--database-url", loaded_url, "--config", str(config))
    result = _invoke(*args)
    assert result.exit_code == 0, result.stderr
    # Every monitor, plus the weekly FinOps report of the last full week.
    assert f"{len(MONITOR_NAMES) + 1} run(s) succeeded, 0 failed" in result.stderr
    assert list((isolated_settings / "reports").glob("finops-*.html"))
    # The windows at the real clock have no predictions, yet the registered version keeps its
    # rows there, as insufficient_data.
    engine = create_store_engine(loaded_url)
    try:
        with engine.connect() as connection:
            silent = connection.execute(
                select(monitor_results.c.status, monitor_results.c.n).where(
                    monitor_results.c.monitor == "confidence_drift",
                    monitor_results.c.model_version == "v1",
                    monitor_results.c.tenant == "*",
                )
            ).all()
    finally:
        engine.dispose()
    assert {tuple(row) for row in silent} == {("insufficient_data", 0)}
    again = _invoke(*args, "--no-finops")
    assert again.exit_code == 0
    assert "0 failed" in again.stderr


SPAN_START = traffic.PREVIOUS[0].isoformat().replace("+00:00", "Z")
HALF_HOUR_LATER = (traffic.PREVIOUS[0] + timedelta(minutes=30)).isoformat()


def test_backfill_stores_the_scheduled_windows_of_a_span_like_monitor_run(loaded_url):
    args = ["backfill", "--from", SPAN_START, "--to", END, "--database-url", loaded_url]
    result = _invoke(*args, "--monitor", "cost", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    windows = sorted({(r["window_start"], r["window_end"]) for r in rows})
    # The default schedule: one-hour windows every 5 minutes, those lying within the two hours.
    assert len(windows) == 13
    assert windows[0] == (SPAN_START, START)
    assert windows[-1] == (START, END)
    assert _stored(loaded_url) == len(rows)
    assert "13 window run(s) on sql" in result.stderr
    again = _invoke(*args, "--monitor", "cost")
    assert again.exit_code == 0
    assert "rows per status" in again.stdout
    assert _stored(loaded_url) == len(rows)  # a re-run replaces
    single = _invoke(
        "run", "--start", START, "--end", END, "--monitor", "cost", "--json",
        "--database-url", loaded_url,
    )  # fmt: skip
    last = [r for r in rows if (r["window_start"], r["window_end"]) == (START, END)]
    strip = [{k: v for k, v in r.items() if k != "details"} for r in last]
    assert strip == [
        {k: v for k, v in r.items() if k != "details"} for r in json.loads(single.stdout)
    ]


def test_backfill_without_storing_leaves_the_results_table_alone(loaded_url):
    args = ["--from", SPAN_START, "--to", END, "--monitor", "schema_failures", "--no-store"]
    result = _invoke("backfill", *args, "--database-url", loaded_url)
    assert result.exit_code == 0, result.stderr
    assert "not stored" in result.stderr
    assert _stored(loaded_url) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "hive"], "unknown engine 'hive'"),
        (["--engine", "spark"], "--engine spark reads the export named by --parquet"),
        (["--parquet", "export"], "--parquet is read by --engine spark only"),
        (["--engine", "spark", "--parquet", "/nonexistent"], "no export folder at /nonexistent"),
        (["--to", HALF_HOUR_LATER], "no scheduled window of the monitors lies within the span"),
    ],
)
def test_backfill_bad_input_is_one_clear_line_and_exit_2(loaded_url, args, message):
    span = ["--from", SPAN_START, "--to", END]
    if "--to" in args:
        span = ["--from", SPAN_START]
    result = _invoke("backfill", *span, *args, "--database-url", loaded_url)
    assert result.exit_code == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert _stored(loaded_url) == 0
