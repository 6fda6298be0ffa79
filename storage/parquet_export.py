"""The `predictions` rows of a span as Parquet partitioned by UTC day (hive layout), for engines
that outgrow one database (Spark backfills): streamed in chunks, each file replaced atomically.

Layout: `<out>/day=YYYY-MM-DD/part-<from>-<to>.parquet`, one file per day and exported span,
named by the span it holds within that day. Exporting the same span again replaces its files; a
span that overlaps another one already exported is refused, so no row is ever there twice.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, and_, func, select

from core.contracts import PREDICTION_ROW, ColumnKind, PredictionColumn
from core.files import replacing
from core.timeutil import Window, days_between, midnight, to_utc
from storage.schema import predictions

# Rows read from the store and written as one Parquet row group at a time: memory stays bounded
# whatever the span holds.
CHUNK_ROWS = 50_000
# JSON columns (the redacted input, the class probabilities) stay in the store.
EXPORTED: tuple[PredictionColumn, ...] = tuple(c for c in PREDICTION_ROW if c.kind != "json")
EXPORTED_COLUMNS: tuple[str, ...] = tuple(c.name for c in EXPORTED)
_ARROW_TYPES: dict[ColumnKind, pa.DataType] = {
    "text": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "float": pa.float64(),
    "int": pa.int64(),
}
SCHEMA = pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind], nullable=c.nullable) for c in EXPORTED])
STAMP = "%Y%m%dT%H%M%S%fZ"
_PART = re.compile(r"part-(\d{8}T\d{12}Z)-(\d{8}T\d{12}Z)\.parquet")
_p = predictions.c


class ExportOverlapError(ValueError):
    """The span overlaps one exported before into the same folder without being the same."""


@dataclass(frozen=True)
class ExportedFile:
    """One Parquet file written: its path, its span within its day, and its rows."""

    path: Path
    span: Window
    rows: int


def count_rows(engine: Engine, span: Window) -> int:
    """Predictions in the span."""
    statement = select(func.count()).select_from(predictions).where(_in(span))
    with engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def record_batches(
    engine: Engine, span: Window, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """The span's predictions (EXPORTED_COLUMNS) as Arrow batches of at most `chunk_rows`."""
    columns = [_p[name] for name in EXPORTED_COLUMNS]
    statement = select(*columns).where(_in(span)).order_by(_p.ts, _p.id)
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=chunk_rows).execute(statement)
        for rows in result.partitions():
            yield _batch(rows)


def _in(span: Window) -> Any:
    return and_(_p.ts >= span.start, _p.ts < span.end)


def _batch(rows: Any) -> pa.RecordBatch:
    values = list(zip(*rows, strict=True))
    arrays = []
    for index, spec in enumerate(EXPORTED):
        column = values[index]
        if spec.kind == "timestamp":  # SQLite gives naive UTC times, PostgreSQL aware ones
            column = tuple(to_utc(t) for t in column)
        arrays.append(pa.array(column, type=SCHEMA.field(index).type))
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def day_spans(span: Window) -> list[Window]:
    """The span cut at UTC midnights: one piece per day it touches."""
    last = (span.end - timedelta(microseconds=1)).date()
    pieces = []
    for day in days_between(span.start.date(), last + timedelta(days=1)):
        start, end = max(span.start, midnight(day)), min(span.end, midnight(day) + timedelta(1))
        pieces.append(Window(start, end))
    return pieces


def part_path(out: Path, piece: Window) -> Path:
    """Where the rows of one day's piece of a span go."""
    name = f"part-{piece.start.strftime(STAMP)}-{piece.end.strftime(STAMP)}.parquet"
    return out / f"day={piece.start.date().isoformat()}" / name


def exported_files(out: Path, day: date | None = None) -> list[Path]:
    """The Parquet files exported into `out` (of one day, or of every day)."""
    folder = "day=*" if day is None else f"day={day.isoformat()}"
    return sorted(p for p in out.glob(f"{folder}/part-*.parquet") if _PART.fullmatch(p.name))


def exported_spans(out: Path, day: date) -> list[Window]:
    """The spans of one day exported into `out` already."""
    spans = []
    for path in exported_files(out, day):
        match = _PART.fullmatch(path.name)
        assert match is not None  # exported_files keeps only names that match
        start, end = (datetime.strptime(m, STAMP) for m in match.groups())
        spans.append(Window(start, end))
    return spans


def check_no_overlap(out: Path, pieces: list[Window]) -> None:
    """Refuse pieces that overlap an exported span without being it (rows would be doubled)."""
    for piece in pieces:
        for known in exported_spans(out, piece.start.date()):
            if known != piece and known.start < piece.end and piece.start < known.end:
                raise ExportOverlapError(
                    f"{part_path(out, known)} already holds {known.start.isoformat()} .. "
                    f"{known.end.isoformat()}, which overlaps the export: export that span "
                    "exactly, or a span that does not overlap it"
                )


def export_parquet(
    engine: Engine,
    span: Window,
    out: Path,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> list[ExportedFile]:
    """Write the span's predictions under `out`, one file per day with rows; `progress` gets
    the rows of each chunk written."""
    pieces = day_spans(span)
    check_no_overlap(out, pieces)
    return [
        file
        for piece in pieces
        if (file := _export_day(engine, piece, out, chunk_rows, progress)) is not None
    ]


def _export_day(
    engine: Engine,
    piece: Window,
    out: Path,
    chunk_rows: int,
    progress: Callable[[int], None] | None,
) -> ExportedFile | None:
    batches = record_batches(engine, piece, chunk_rows)
    first = next(batches, None)
    if first is None:  # a day without predictions leaves no file
        return None
    path, rows = part_path(out, piece), 0
    with replacing(path) as tmp, pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
        for batch in itertools.chain([first], batches):
            writer.write_batch(batch)
            rows += batch.num_rows
            if progress is not None:
                progress(batch.num_rows)
    return ExportedFile(path, piece, rows)
