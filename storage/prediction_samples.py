"""Raw rows of one model's successful predictions in a window, sampled evenly when many."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, and_, func, select, true
from sqlalchemy.sql.elements import ColumnElement

from core.timeutil import to_utc
from storage.schema import predictions

SAMPLE_COLUMNS = ("tenant", "confidence", "predicted_class")
_p = predictions.c


def _ok_rows(
    model_name: str, model_version: str | None, start: datetime, end: datetime
) -> ColumnElement[bool]:
    condition = and_(
        _p.model_name == model_name,
        _p.ts >= to_utc(start),
        _p.ts < to_utc(end),
        _p.status == "ok",
        _p.confidence.is_not(None),
    )
    return (
        condition if model_version is None else and_(condition, _p.model_version == model_version)
    )


def busiest_version(engine: Engine, model_name: str, start: datetime, end: datetime) -> str | None:
    """The version of `model_name` with the most successful predictions in [start, end)."""
    statement = (
        select(_p.model_version, func.count().label("n"))
        .where(_ok_rows(model_name, None, start, end))
        .group_by(_p.model_version)
        .order_by(func.count().desc(), _p.model_version)
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(statement).first()
    return None if row is None else str(row[0])


def sampled_rows(
    engine: Engine,
    model_name: str,
    model_version: str,
    start: datetime,
    end: datetime,
    max_rows: int,
) -> pd.DataFrame:
    """Tenant, confidence and class in [start, end); every k-th row (by id) past `max_rows`."""
    condition = _ok_rows(model_name, model_version, start, end)
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).where(condition)).scalar_one()
        step = max(math.ceil(total / max_rows), 1)
        if step > 1:
            condition = and_(condition, _p.id % step == 0)
        rows = connection.execute(
            select(_p.tenant, _p.confidence, _p.predicted_class).where(condition).order_by(_p.id)
        ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(SAMPLE_COLUMNS))


def prediction_count(engine: Engine) -> int:
    """Rows in `predictions`."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


STREAM_ROWS = 1000
STORED_INPUT_COLUMNS = (
    "request_id",
    "ts",
    "tenant",
    "model_version",
    "predicted_class",
    "confidence",
    "features",
)


@dataclass(frozen=True)
class StoredInputs:
    """Successful predictions with their stored inputs, and how many had none stored."""

    rows: pd.DataFrame
    without_inputs: int


@dataclass(frozen=True)
class RowScope:
    """Which rows of a window count: some endpoints, one tenant, one region (None: all)."""

    endpoints: tuple[str, ...] | None = None
    tenant: str | None = None
    region: str | None = None

    def condition(self) -> ColumnElement[bool]:
        found: list[ColumnElement[bool]] = []
        if self.endpoints is not None:
            found.append(_p.endpoint.in_(self.endpoints))
        if self.tenant is not None:
            found.append(_p.tenant == self.tenant)
        if self.region is not None:
            found.append(_p.region == self.region)
        return and_(true(), *found)


def stored_inputs(
    engine: Engine,
    model_name: str,
    since: datetime,
    until: datetime,
    scope: RowScope = RowScope(),
    limit: int | None = None,
    *,
    model_version: str | None = None,
) -> StoredInputs:
    """`model_name`'s successful rows in [since, until) (of `model_version`, in `scope`),
    oldest first, whose redacted input was stored (at most `limit`), and the count of those
    without one."""
    condition = and_(_ok_rows(model_name, model_version, since, until), scope.condition())
    # JSON null and SQL NULL both mean "not stored"; rows are read and filtered in Python so
    # the query stays the same on SQLite and PostgreSQL.
    statement = select(*(getattr(_p, c) for c in STORED_INPUT_COLUMNS)).where(condition)
    with engine.connect() as connection:
        # Streamed: a long window's inputs are not held in memory all at once.
        streamed = connection.execution_options(yield_per=STREAM_ROWS)
        result = streamed.execute(statement.order_by(_p.id))
        kept: list[tuple[object, ...]] = []
        without = 0
        for row in result:
            if not row.features:
                without += 1
            elif limit is None or len(kept) < limit:
                kept.append(tuple(row))
    frame = pd.DataFrame(kept, columns=list(STORED_INPUT_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return StoredInputs(frame, without)


VERSION_ROW_COLUMNS = ("model_version", "status", "latency_ms", "predicted_class", "confidence")
MAX_VERSION_ROWS = 100_000


def version_rows(
    engine: Engine,
    model_name: str,
    versions: Sequence[str],
    since: datetime,
    until: datetime,
    scope: RowScope = RowScope(),
    max_rows: int = MAX_VERSION_ROWS,
) -> pd.DataFrame:
    """Every row (all statuses) of `versions` of `model_name` in [since, until) and `scope`:
    version, status, latency, class and confidence; every k-th row (by id) past `max_rows`."""
    condition = and_(
        _p.model_name == model_name,
        _p.model_version.in_(list(versions)),
        _p.ts >= to_utc(since),
        _p.ts < to_utc(until),
        scope.condition(),
    )
    columns = [getattr(_p, c) for c in VERSION_ROW_COLUMNS]
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).where(condition)).scalar_one()
        step = max(math.ceil(total / max_rows), 1)
        if step > 1:
            condition = and_(condition, _p.id % step == 0)
        rows = connection.execute(select(*columns).where(condition).order_by(_p.id)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(VERSION_ROW_COLUMNS))
    return frame.astype({"latency_ms": "float64", "confidence": "float64"})
