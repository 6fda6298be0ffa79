"""Windowed aggregates over `predictions`, computed in SQL: monitors read O(groups x bins) rows."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Engine,
    Float,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from core.timeutil import to_utc
from storage.engine import is_sqlite
from storage.schema import predictions

GROUP_COLUMNS = ("model_name", "model_version", "tenant", "endpoint")
_p = predictions.c


def _window(start: datetime, end: datetime, model_name: str | None) -> ColumnElement[bool]:
    if end <= start:
        raise ValueError(f"empty or inverted window: start {start} is not before end {end}")
    condition = and_(_p.ts >= to_utc(start), _p.ts < to_utc(end))
    if model_name is not None:
        condition = and_(condition, _p.model_name == model_name)
    return condition


def _grouped(
    extra: Sequence[ColumnElement[Any]],
    aggregates: Sequence[ColumnElement[Any]],
    where: ColumnElement[bool],
) -> Select[Any]:
    keys = [_p[c] for c in GROUP_COLUMNS] + list(extra)
    return select(*keys, *aggregates).where(where).group_by(*keys)


def _frame(engine: Engine, statement: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def class_counts(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """Successful predictions per predicted class."""
    where = and_(_window(start, end, model_name), _p.status == "ok")
    statement = _grouped([_p.predicted_class], [func.count().label("n")], where)
    frame = _frame(engine, statement, [*GROUP_COLUMNS, "predicted_class", "n"])
    return frame.astype({"n": "int64"})


def check_edges(edges: Sequence[float]) -> None:
    """Bin edges must be at least two strictly increasing values."""
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("bin edges must be at least two strictly increasing values")


def confidence_histogram(
    engine: Engine,
    start: datetime,
    end: datetime,
    edges: Sequence[float],
    model_name: str | None = None,
) -> pd.DataFrame:
    """Successful predictions per bin [edges[i], edges[i+1]); the last bin is closed, ends clamp."""
    check_edges(edges)
    where = and_(_window(start, end, model_name), _p.status == "ok", _p.confidence.is_not(None))
    bin_index = _bin_expression(engine, [float(e) for e in edges[1:-1]]).label("bin")
    statement = _grouped([bin_index], [func.count().label("n")], where)
    frame = _frame(engine, statement, [*GROUP_COLUMNS, "bin", "n"])
    return frame.astype({"bin": "int64", "n": "int64"})


def _bin_expression(
    engine: Engine, inner: list[float], column: ColumnElement[Any] = _p.confidence
) -> ColumnElement[Any]:
    """Index of the bin holding `column` (default: confidence), given the interior edges."""
    if not inner:
        return literal(0)
    if is_sqlite(engine):
        return _binary_case(column, inner, 0, len(inner))
    # width_bucket with an array of thresholds is a binary search in PostgreSQL.
    return func.width_bucket(column, cast(literal(inner, ARRAY(Float)), ARRAY(Float)))


def bin_expression(
    engine: Engine, edges: Sequence[float], column: ColumnElement[Any]
) -> ColumnElement[Any]:
    """Index of the bin [edges[i], edges[i+1]) holding `column`, the ends clamped."""
    check_edges(edges)
    return _bin_expression(engine, [float(e) for e in edges[1:-1]], column)


def _binary_case(
    column: ColumnElement[Any], inner: list[float], lo: int, hi: int
) -> ColumnElement[Any]:
    """Nested CASE that binary-searches the interior edges: depth log2(bins), not bins."""
    if lo == hi:
        return literal(lo)
    mid = (lo + hi) // 2
    return case(
        (column < inner[mid], _binary_case(column, inner, lo, mid)),
        else_=_binary_case(column, inner, mid + 1, hi),
    )


# What compute_totals adds up per group (all statuses: a failed request was computed too).
COMPUTE_SUMS = ("n", "requests", "compute_ms", "busy_ms")


def later_item() -> ColumnElement[bool]:
    """A bulk request's rows after its first (`<id>:1`, `<id>:2`, ...): not a request."""
    return and_(_p.request_id.like("%:%"), _p.request_id.not_like("%:0"))


def _compute_sums() -> list[ColumnElement[Any]]:
    """Rows, requests, inference ms and the worker's busy ms.

    A bulk request's rows are `<id>:0`, `<id>:1`, ...: only its first counts as a request. A
    row without a measured busy time (older rows, other writers) counts its inference time.
    """
    busy = func.coalesce(_p.busy_ms, _p.compute_ms)
    return [
        func.count().label("n"),
        func.sum(case((later_item(), 0), else_=1)).label("requests"),
        func.coalesce(func.sum(_p.compute_ms), 0.0).label("compute_ms"),
        func.coalesce(func.sum(busy), 0.0).label("busy_ms"),
    ]


def _compute_frame(engine: Engine, statement: Select[Any], keys: Sequence[str]) -> pd.DataFrame:
    frame = _frame(engine, statement, [*keys, *COMPUTE_SUMS])
    types = {"n": "int64", "requests": "int64", "compute_ms": "float64", "busy_ms": "float64"}
    return frame.astype(types)


def resource_class() -> ColumnElement[Any]:
    """A row's resource class; rows written without one ran on CPU."""
    return func.coalesce(_p.resource_class, "cpu")


def compute_totals(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """Predictions (rows), requests, inference and busy milliseconds per group and resource
    class (all statuses)."""
    resource = resource_class().label("resource_class")
    statement = _grouped([resource], _compute_sums(), _window(start, end, model_name))
    return _compute_frame(engine, statement, [*GROUP_COLUMNS, "resource_class"])


def status_counts(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """Requests per status (`ok` or the error class)."""
    where = _window(start, end, model_name)
    statement = _grouped([_p.status], [func.count().label("n")], where)
    frame = _frame(engine, statement, [*GROUP_COLUMNS, "status", "n"])
    return frame.astype({"n": "int64"})


HOUR_SECONDS = 3600


def hourly_counts(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """Predictions (every status) per model, version, tenant and hour since `start`.

    `hour` is the index of the hour [start + i h, start + (i + 1) h) a row falls in (whole
    seconds); the last one is partial when the span is not a whole number of hours.
    """
    hour = _hour_index(engine, start).label("hour")
    keys = [_p.model_name, _p.model_version, _p.tenant, hour]
    statement = (
        select(*keys, func.count().label("n"))
        .where(_window(start, end, model_name))
        .group_by(*keys)
    )
    frame = _frame(engine, statement, ["model_name", "model_version", "tenant", "hour", "n"])
    return frame.astype({"hour": "int64", "n": "int64"})


def _hour_index(engine: Engine, start: datetime) -> ColumnElement[Any]:
    origin = int(to_utc(start).timestamp())  # whole seconds: exact integer arithmetic below
    return (epoch_seconds(engine) - origin) // HOUR_SECONDS  # division of a non-negative number


def epoch_seconds(engine: Engine, column: ColumnElement[Any] = _p.ts) -> ColumnElement[Any]:
    """A timestamp column (default: `ts`) in whole seconds since the epoch (rounded down)."""
    if is_sqlite(engine):
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def daily_compute_totals(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """compute_totals per UTC day."""
    day = _utc_day(engine).label("day")
    resource = resource_class().label("resource_class")
    statement = _grouped([day, resource], _compute_sums(), _window(start, end, model_name))
    frame = _compute_frame(engine, statement, [*GROUP_COLUMNS, "day", "resource_class"])
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def hourly_busy_ms(engine: Engine, start: datetime, end: datetime) -> pd.DataFrame:
    """The worker busy milliseconds of each UTC hour that had traffic (`hour`, `busy_ms`)."""
    hour = _utc_hour(engine).label("hour")
    busy = func.coalesce(func.sum(func.coalesce(_p.busy_ms, _p.compute_ms)), 0.0).label("b")
    statement = select(hour, busy).where(_window(start, end, None)).group_by(hour)
    frame = _frame(engine, statement, ["hour", "busy_ms"])
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    return frame.astype({"busy_ms": "float64"}).sort_values("hour").reset_index(drop=True)


def _utc_day(engine: Engine) -> ColumnElement[Any]:
    if is_sqlite(engine):
        return func.date(_p.ts)
    return func.date(func.timezone("UTC", _p.ts))


def _utc_hour(engine: Engine) -> ColumnElement[Any]:
    if is_sqlite(engine):
        return func.strftime("%Y-%m-%d %H:00:00", _p.ts)
    return func.date_trunc("hour", func.timezone("UTC", _p.ts))


def first_prediction_day(
    engine: Engine, before: datetime, since: datetime | None = None
) -> date | None:
    """UTC day of the store's first prediction before `before` (and at or after `since`)."""
    condition = _p.ts < to_utc(before)
    if since is not None:
        condition = and_(condition, _p.ts >= to_utc(since))
    statement = select(func.min(_p.ts)).where(condition)
    with engine.connect() as connection:
        first = connection.execute(statement).scalar()
    return to_utc(first).date() if first is not None else None


# A key's stretch of time: (model_name, model_version, tenant or None for all tenants, start, end).
Period = tuple[str, str, str | None, datetime, datetime]
KEY_COLUMNS = ("model_name", "model_version", "tenant")


def first_predictions(
    engine: Engine, start: datetime | None, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """Time of the first successful prediction per (model, version, tenant) in [start, end).

    From the store's first row when `start` is None (a scan of the whole table; callers keep
    what they found and ask again only from where they stopped).
    """
    condition = and_(_p.ts < to_utc(end), _p.status == "ok")
    if start is not None:
        condition = and_(condition, _p.ts >= to_utc(start))
    if model_name is not None:
        condition = and_(condition, _p.model_name == model_name)
    keys = [_p[c] for c in KEY_COLUMNS]
    statement = select(*keys, func.min(_p.ts).label("first_ts")).where(condition).group_by(*keys)
    frame = _frame(engine, statement, [*KEY_COLUMNS, "first_ts"])
    frame["first_ts"] = [to_utc(t) for t in frame["first_ts"]]
    return frame


def _in_periods(periods: Sequence[Period]) -> ColumnElement[bool]:
    """Successful predictions of any of the periods' keys within that key's period."""
    if not periods:
        raise ValueError("at least one period is needed")
    terms = []
    for model, version, tenant, start, end in periods:
        term = and_(
            _p.model_name == model,
            _p.model_version == version,
            _p.ts >= to_utc(start),
            _p.ts < to_utc(end),
        )
        terms.append(term if tenant is None else and_(term, _p.tenant == tenant))
    return and_(_p.status == "ok", or_(*terms))


def period_class_counts(engine: Engine, periods: Sequence[Period]) -> pd.DataFrame:
    """Successful predictions per predicted class and tenant, each key within its period."""
    keys = [_p[c] for c in KEY_COLUMNS]
    statement = (
        select(*keys, _p.predicted_class, func.count().label("n"))
        .where(_in_periods(periods))
        .group_by(*keys, _p.predicted_class)
    )
    frame = _frame(engine, statement, [*KEY_COLUMNS, "predicted_class", "n"])
    return frame.astype({"n": "int64"})


def period_confidence_histogram(
    engine: Engine, periods: Sequence[Period], edges: Sequence[float]
) -> pd.DataFrame:
    """Successful predictions per confidence bin and tenant, each key within its period."""
    check_edges(edges)
    keys = [_p[c] for c in KEY_COLUMNS]
    bin_index = _bin_expression(engine, [float(e) for e in edges[1:-1]]).label("bin")
    statement = (
        select(*keys, bin_index, func.count().label("n"))
        .where(and_(_in_periods(periods), _p.confidence.is_not(None)))
        .group_by(*keys, bin_index)
    )
    frame = _frame(engine, statement, [*KEY_COLUMNS, "bin", "n"])
    return frame.astype({"bin": "int64", "n": "int64"})
