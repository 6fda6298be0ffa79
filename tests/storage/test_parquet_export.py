"""The Parquet export of `predictions` (SQLite and PostgreSQL): every row of the span once, in
its UTC day's file, with the store's values; chunked; atomic; overlapping spans refused."""

from datetime import timedelta

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from core.timeutil import Window
from storage.parquet_export import (
    EXPORTED_COLUMNS,
    ExportOverlapError,
    count_rows,
    day_spans,
    export_parquet,
    exported_files,
)
from storage.writer import write_predictions
from tests.storage.records import T0, make_records

# 5,000 rows every 40 s from 22:00 the day before: about 2.3 days, three day partitions.
START = T0 - timedelta(hours=2)
SPAN = Window(START + timedelta(hours=1), START + timedelta(hours=50))


@pytest.fixture
def out(tmp_path):
    return tmp_path / "export"


@pytest.fixture
def loaded(store_engine):
    write_predictions(store_engine, make_records(5000, start=START, step_s=40.0))
    return store_engine


def _exported(out):
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    return table.sort_by("request_id").to_pylist()


def test_each_row_of_the_span_lands_once_in_its_days_file_with_the_stores_values(loaded, out):
    chunks = []
    files = export_parquet(loaded, SPAN, out, chunk_rows=700, progress=chunks.append)
    expected = [
        r for r in make_records(5000, start=START, step_s=40.0) if SPAN.start <= r["ts"] < SPAN.end
    ]
    assert sum(f.rows for f in files) == sum(chunks) == count_rows(loaded, SPAN) == len(expected)
    assert max(chunks) == 700  # streamed in bounded chunks
    assert [f.path.parent.name for f in files] == [
        "day=2026-11-15",
        "day=2026-11-16",
        "day=2026-11-17",
    ]
    rows = _exported(out)
    assert len(rows) == len(expected)
    by_id = {r["request_id"]: r for r in expected}
    for row in rows:
        record = by_id[row["request_id"]]
        assert row["day"] == row["ts"].date().isoformat() == record["ts"].date().isoformat()
        for column in EXPORTED_COLUMNS:
            assert row[column] == record.get(column), column
    assert "features" not in rows[0]  # stored inputs stay in the store


def test_a_day_without_predictions_leaves_no_file(loaded, out):
    quiet = Window(START - timedelta(days=3), START - timedelta(days=1))
    assert export_parquet(loaded, quiet, out) == []
    assert exported_files(out) == []


def test_the_same_span_again_replaces_its_files_and_an_overlapping_one_is_refused(loaded, out):
    first = export_parquet(loaded, SPAN, out)
    again = export_parquet(loaded, SPAN, out)
    assert [f.path for f in again] == [f.path for f in first] == exported_files(out)
    assert len(_exported(out)) == count_rows(loaded, SPAN)
    shifted = Window(SPAN.start + timedelta(minutes=30), SPAN.end)
    with pytest.raises(ExportOverlapError, match="overlaps the export"):
        export_parquet(loaded, shifted, out)
    after = Window(SPAN.end, SPAN.end + timedelta(hours=3))  # adjacent: no overlap
    export_parquet(loaded, after, out)
    assert len(_exported(out)) == count_rows(loaded, Window(SPAN.start, after.end))
    assert not list(out.rglob("*.tmp"))


def test_a_failed_export_leaves_no_partial_file(loaded, out):
    def fail(rows: int) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export_parquet(loaded, SPAN, out, chunk_rows=500, progress=fail)
    assert exported_files(out) == []
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_day_spans_cut_a_span_at_utc_midnights():
    assert day_spans(SPAN) == [
        Window(SPAN.start, T0),
        Window(T0, T0 + timedelta(days=1)),
        Window(T0 + timedelta(days=1), SPAN.end),
    ]
    assert day_spans(Window(T0, T0 + timedelta(days=1))) == [Window(T0, T0 + timedelta(days=1))]


def test_the_files_carry_the_contract_schema(loaded, out):
    files = export_parquet(loaded, SPAN, out)
    schema = pq.read_schema(files[0].path)
    assert tuple(schema.names) == EXPORTED_COLUMNS
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
