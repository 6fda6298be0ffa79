"""The SQL panels run on the real store (SQLite and PostgreSQL) and read the contract columns."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import DateTime, bindparam, text

from dashboards.datasources import POSTGRES_TYPE
from storage import rollups
from storage.aggregates import compute_totals
from storage.writer import upsert_monitor_results, write_predictions
from tests.dashboards.conftest import panels

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TIME_FILTER = re.compile(r"\$__timeFilter\((\w+)\)")


def sql_panels(dashboards):
    return {
        p["title"]: p["targets"][0]["rawSql"]
        for d in dashboards.values()
        for p in panels(d)
        if p["targets"] and p["targets"][0]["datasource"]["type"] == POSTGRES_TYPE
    }


def run_as_grafana(engine, sql, start, end):
    """Expand `$__timeFilter(col)` the way Grafana's SQL datasources do, then run it."""
    statement = text(TIME_FILTER.sub(r"\1 BETWEEN :start AND :end", sql)).bindparams(
        bindparam("start", type_=DateTime(timezone=True)),
        bindparam("end", type_=DateTime(timezone=True)),
    )
    with engine.connect() as connection:
        result = connection.execute(statement, {"start": start, "end": end})
        return list(result.keys()), [tuple(row) for row in result]


def _prediction(i, tenant, ts):
    return {
        "request_id": f"r{i}",
        "ts": ts,
        "tenant": tenant,
        "endpoint": "classify_ticket",
        "model_name": "ticket_classifier",
        "model_version": "3",
        "predicted_class": "billing",
        "confidence": 0.9,
        "latency_ms": 12.0,
        "compute_ms": 500.0,
        "batch_size": 4,
        "status": "ok",
    }


def test_two_sql_panels_exist(dashboards):
    assert set(sql_panels(dashboards)) == {
        "Latest monitor results (store)",
        "Predictions and compute by tenant and endpoint (store)",
    }


def test_only_drill_down_panels_read_raw_prediction_rows(dashboards):
    """Aggregates come from the rollups: a panel on raw rows lists them, it does not group."""
    for title, sql in sql_panels(dashboards).items():
        if re.search(r"\bFROM\s+predictions\b", sql, re.IGNORECASE):
            assert not re.search(r"\b(GROUP BY|count|sum|avg)\b", sql, re.IGNORECASE), title


def test_predictions_panel_counts_the_range_only(store_engine, dashboards):
    inside = [
        _prediction(i, "acme" if i < 3 else "globex", START + timedelta(minutes=i))
        for i in range(5)
    ]
    inside[0]["busy_ms"] = 2000.0  # the others were stored without it: their inference time
    outside = [_prediction(9, "acme", START - timedelta(days=1))]
    write_predictions(store_engine, inside + outside)
    assert rollups.fold_pending(store_engine) == 6  # what the scheduler does each tick
    sql = sql_panels(dashboards)["Predictions and compute by tenant and endpoint (store)"]
    columns, rows = run_as_grafana(store_engine, sql, START, START + timedelta(hours=1))
    assert columns == [
        "tenant",
        "endpoint",
        "model_name",
        "model_version",
        "predictions",
        "compute_seconds",
        "busy_seconds",
    ]
    assert [(r[0], r[4], pytest.approx(r[5]), pytest.approx(r[6])) for r in rows] == [
        ("acme", 3, 1.5, 3.0),
        ("globex", 2, 1.0, 1.0),
    ]
    raw = compute_totals(store_engine, START, START + timedelta(hours=1))
    assert sum(r[4] for r in rows) == raw["n"].sum()
    assert sum(r[6] for r in rows) == pytest.approx(raw["busy_ms"].sum() / 1000.0)


def test_monitor_results_panel_lists_the_newest_rows(store_engine, dashboards):
    row = {
        "monitor": "confidence_drift",
        "metric": "psi",
        "model_name": "ticket_classifier",
        "model_version": "3",
        "tenant": "*",
        "value": 0.3,
        "threshold": 0.25,
        "status": "alert",
        "n": 500,
    }
    windows = [(START + timedelta(hours=h), START + timedelta(hours=h + 1)) for h in range(3)]
    upsert_monitor_results(
        store_engine, [{**row, "window_start": s, "window_end": e} for s, e in windows]
    )
    sql = sql_panels(dashboards)["Latest monitor results (store)"]
    columns, rows = run_as_grafana(store_engine, sql, START, START + timedelta(hours=2, minutes=30))
    assert columns[:3] == ["time", "monitor", "metric"]
    assert [r[columns.index("status")] for r in rows] == ["alert", "alert"]
    assert rows[0][columns.index("n")] == 500
