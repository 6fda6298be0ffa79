"""Per-minute rollups of `predictions`: folded once per row after the write, read by monitors.

`fold_rollups` adds the predictions above `rollup_cursor` to `prediction_rollups` and moves the
cursor in one transaction, so a crash folds nothing twice and a refused duplicate (never a row)
is never counted. The frame functions answer `storage.aggregates`' frames from the rollups:
whole minutes from `prediction_rollups`, the partial minutes at a window's ends from raw rows.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from core.confidence_grid import FINE_EDGES
from core.timeutil import to_utc
from storage import aggregates
from storage.aggregates import GROUP_COLUMNS, KEY_COLUMNS, Period
from storage.engine import is_sqlite
from storage.schema import ROLLUP_KEY, prediction_rollups, predictions, rollup_cursor

_p, _r = predictions.c, prediction_rollups.c
FOLD_ROWS = 50_000  # predictions per fold transaction
MINUTE = timedelta(minutes=1)
# Latency buckets: powers of two from 1/16 ms to about 17 minutes (the ends clamp).
LATENCY_EDGES: tuple[float, ...] = tuple(2.0**k for k in range(-4, 21))
_MAPS = ("statuses", "classes", "confidence_bins", "latency_buckets")
_SUMS = ("n", "requests", "latency_ms", "compute_ms", "busy_ms")
RollupRow = Mapping[Any, Any]  # a row of prediction_rollups, by column
RollupKey = tuple[Any, ...]  # ROLLUP_KEY's values: minute (UTC datetime), model, ..., resource


# --- folding -------------------------------------------------------------------------------


def fold_rollups(engine: Engine, limit: int = FOLD_ROWS, up_to: int | None = None) -> int:
    """Fold up to `limit` predictions above the cursor (and at most id `up_to`) into the
    rollups; the rows folded."""
    if limit < 1:
        raise ValueError(f"a fold takes at least one prediction, not {limit}")
    with engine.begin() as connection:
        last = _claim_cursor(connection)
        above = _p.id > last if up_to is None else and_(_p.id > last, _p.id <= up_to)
        ids = select(_p.id).where(above).order_by(_p.id).limit(limit).subquery()
        high, rows = connection.execute(select(func.max(ids.c.id), func.count())).one()
        if high is None:
            return 0
        batch = _aggregate(connection, and_(_p.id > last, _p.id <= high))
        _merge(connection, batch)
        cursor = update(rollup_cursor).where(rollup_cursor.c.id == 1)
        connection.execute(cursor.values(last_id=int(high)))
        return int(rows)


def fold_pending(engine: Engine, limit: int = FOLD_ROWS) -> int:
    """Fold the predictions stored when it starts, `limit` per transaction (not those written
    meanwhile: a busy writer cannot keep it folding); the rows folded."""
    newest = newest_pending(engine)
    total = 0
    while newest is not None and (rows := fold_rollups(engine, limit, up_to=newest)):
        total += rows
    return total


def newest_pending(engine: Engine) -> int | None:
    """The newest prediction id when it is above the cursor, else None (a read: no lock)."""
    cursor = select(rollup_cursor.c.last_id).where(rollup_cursor.c.id == 1).scalar_subquery()
    with engine.connect() as connection:
        last, newest = connection.execute(select(cursor, func.max(_p.id))).one()
    return None if newest is None or last is None or newest <= last else int(newest)


def _claim_cursor(connection: Connection) -> int:
    """The cursor, locked until the transaction ends: one fold at a time (a row lock on
    PostgreSQL; the write lock on SQLite, taken before anything is read)."""
    claim = update(rollup_cursor).where(rollup_cursor.c.id == 1)
    connection.execute(claim.values(last_id=rollup_cursor.c.last_id))
    last = select(rollup_cursor.c.last_id).where(rollup_cursor.c.id == 1)
    value = connection.execute(last).scalar()
    if value is None:
        raise RuntimeError(
            "rollup_cursor has no row: is the store migrated (`servewatch db upgrade`)?"
        )
    return int(value)


@dataclass
class _Rollup:
    """One key's sums, maps and times, mergeable by addition."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_SUMS, 0.0))
    maps: dict[str, Counter[Any]] = field(default_factory=lambda: {m: Counter() for m in _MAPS})
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    first_ok_ts: datetime | None = None

    def add(self, other: _Rollup) -> None:
        for name in _SUMS:
            self.sums[name] += other.sums[name]
        for name in _MAPS:
            self.maps[name].update(other.maps[name])
        self.first_ts = _earliest(self.first_ts, other.first_ts)
        self.last_ts = _latest(self.last_ts, other.last_ts)
        self.first_ok_ts = _earliest(self.first_ok_ts, other.first_ok_ts)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: self.sums[name] for name in _SUMS}
        out["n"], out["requests"] = int(out["n"]), int(out["requests"])
        out.update({name: _pairs(self.maps[name]) for name in _MAPS})
        out.update(first_ts=self.first_ts, last_ts=self.last_ts, first_ok_ts=self.first_ok_ts)
        return out

    @classmethod
    def of_row(cls, row: RollupRow) -> _Rollup:
        rollup = cls({name: float(row[name]) for name in _SUMS})
        rollup.maps = {name: Counter(dict(_items(row[name]))) for name in _MAPS}
        rollup.first_ts, rollup.last_ts = to_utc(row["first_ts"]), to_utc(row["last_ts"])
        rollup.first_ok_ts = None if row["first_ok_ts"] is None else to_utc(row["first_ok_ts"])
        return rollup


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _pairs(counts: Counter[Any]) -> list[list[Any]]:
    """A map as JSON-able [key, count] pairs, sorted (a null key first)."""
    return [[k, n] for k, n in sorted(counts.items(), key=lambda kv: (kv[0] is not None, kv[0]))]


def _items(pairs: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, int]]:
    return ((k, int(n)) for k, n in pairs)


def _aggregate(connection: Connection, batch: ColumnElement[bool]) -> dict[RollupKey, _Rollup]:
    """The batch's rollups per key, from one GROUP BY per aggregate (all in SQL)."""
    engine = connection.engine
    minute = (aggregates.epoch_seconds(engine) // 60).label("minute")
    keys = [minute, *(_p[c] for c in GROUP_COLUMNS), aggregates.resource_class()]
    ok = _p.status == "ok"
    out: dict[tuple[Any, ...], _Rollup] = {}  # by the key as the rows give it (epoch minutes)

    def grouped(extra: list[Any], values: list[Any], where: ColumnElement[bool]) -> Any:
        statement = select(*keys, *extra, *values).where(where).group_by(*keys, *extra)
        return connection.execute(statement)

    def rollup(row: Sequence[Any]) -> _Rollup:
        # Called once per row of every GROUP BY: a _Rollup is made only for a key not seen
        # (setdefault would build one per call), and minutes become datetimes once, at the end.
        key = tuple(row[: len(keys)])
        found = out.get(key)
        if found is None:
            found = out[key] = _Rollup()
        return found

    totals = [
        func.count(),
        func.sum(case((aggregates.later_item(), 0), else_=1)),
        func.sum(_p.latency_ms),
        func.sum(_p.compute_ms),
        func.sum(func.coalesce(_p.busy_ms, _p.compute_ms)),
        func.min(_p.ts),
        func.max(_p.ts),
        func.min(case((ok, _p.ts))),
    ]
    for row in grouped([], totals, batch):
        target, values = rollup(row), row[len(keys) :]
        target.sums = {name: float(v) for name, v in zip(_SUMS, values[:5], strict=True)}
        target.first_ts, target.last_ts = to_utc(values[5]), to_utc(values[6])
        target.first_ok_ts = None if values[7] is None else to_utc(values[7])
    fine_bin = aggregates.bin_expression(engine, FINE_EDGES, _p.confidence)
    latency_bucket = aggregates.bin_expression(engine, LATENCY_EDGES, _p.latency_ms)
    breakdowns = {
        "statuses": (_p.status, batch),
        "classes": (_p.predicted_class, and_(batch, ok)),
        "confidence_bins": (fine_bin, and_(batch, ok, _p.confidence.is_not(None))),
        "latency_buckets": (latency_bucket, batch),
    }
    for name, (column, where) in breakdowns.items():
        for row in grouped([column], [func.count()], where):
            rollup(row).maps[name][row[len(keys)]] += int(row[len(keys) + 1])
    return {
        (datetime.fromtimestamp(int(key[0]) * 60, UTC), *key[1:]): value
        for key, value in out.items()
    }


def _merge(connection: Connection, batch: Mapping[RollupKey, _Rollup]) -> None:
    """Add the batch to the stored rollups: update the keys stored, insert the others."""
    existing = _stored(connection, batch.keys())
    updates, inserts = [], []
    for key, rollup in batch.items():
        if key in existing:
            row_id, stored = existing[key]
            stored.add(rollup)
            updates.append({"row_id": row_id, **stored.values()})
        else:
            inserts.append({**dict(zip(ROLLUP_KEY, key, strict=True)), **rollup.values()})
    if updates:
        columns: dict[str, Any] = {name: bindparam(name) for name in updates[0] if name != "row_id"}
        statement = update(prediction_rollups).where(_r.id == bindparam("row_id"))
        connection.execute(statement.values(columns), updates)
    if inserts:
        connection.execute(insert(prediction_rollups), inserts)


def _stored(connection: Connection, keys: Iterable[RollupKey]) -> dict[RollupKey, Any]:
    """The stored rollups (id, contents) of `keys`, found by their minutes."""
    wanted = set(keys)
    minutes = sorted({key[0] for key in wanted})
    found: dict[RollupKey, Any] = {}
    for low in range(0, len(minutes), 500):
        statement = select(prediction_rollups).where(_r.minute.in_(minutes[low : low + 500]))
        for row in connection.execute(statement).mappings():
            key = (to_utc(row["minute"]), *(row[c] for c in ROLLUP_KEY[1:]))
            if key in wanted:
                found[key] = (row["id"], _Rollup.of_row(row))
    return found


def rollups_before(engine: Engine, before: datetime) -> int:
    """The rollup rows of minutes before `before`."""
    statement = select(func.count()).where(_r.minute < to_utc(before))
    with engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def prune_rollups(engine: Engine, before: datetime) -> int:
    """Delete the rollups of minutes before `before` (predictions are untouched); rows deleted."""
    with engine.begin() as connection:
        result = connection.execute(delete(prediction_rollups).where(_r.minute < to_utc(before)))
        return int(result.rowcount)


# --- reading -------------------------------------------------------------------------------


def _floor_minute(t: datetime) -> datetime:
    t = to_utc(t)
    return t.replace(second=0, microsecond=0)


def _ceil_minute(t: datetime) -> datetime:
    floor = _floor_minute(t)
    return floor if floor == to_utc(t) else floor + MINUTE


def aligned(t: datetime) -> bool:
    """Whether `t` is a whole UTC minute."""
    return _floor_minute(t) == to_utc(t)


@dataclass(frozen=True)
class _Split:
    """A window as whole minutes [core_start, core_end) and the raw pieces at its ends."""

    core: tuple[datetime, datetime] | None
    edges: tuple[tuple[datetime, datetime], ...]


def _split(start: datetime, end: datetime) -> _Split:
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise ValueError(f"empty or inverted window: start {start} is not before end {end}")
    core_start, core_end = _ceil_minute(start), _floor_minute(end)
    if core_end <= core_start:
        return _Split(None, ((start, end),))
    edges = tuple((a, b) for a, b in ((start, core_start), (core_end, end)) if a < b)
    return _Split((core_start, core_end), edges)


def _core(start: datetime, end: datetime, model_name: str | None) -> ColumnElement[bool]:
    """The rollups of the whole minutes [start, end), of one model or all."""
    where = and_(_r.minute >= start, _r.minute < end)
    return where if model_name is None else and_(where, _r.model_name == model_name)


def _summed(
    engine: Engine,
    where: ColumnElement[bool],
    keys: Sequence[ColumnElement[Any]],
    values: Sequence[ColumnElement[Any]],
) -> list[tuple[Any, ...]]:
    """(key..., value...) per key, added up in SQL: the scalar columns need no Python."""
    statement = select(*keys, *values).where(where).group_by(*keys)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def _counted(
    engine: Engine,
    start: datetime,
    end: datetime,
    model_name: str | None,
    core: Callable[[datetime, datetime], Iterable[tuple[Any, ...]]],
    raw: Callable[[datetime, datetime], pd.DataFrame],
    keys: Sequence[str],
    values: Mapping[str, str],
) -> pd.DataFrame:
    """The (key..., value...) rows `core` finds in the whole minutes' rollups, and `raw`'s
    frames of the ends, added up per key."""
    split = _split(start, end)
    names = [*keys, *values]
    rows = [] if split.core is None else list(core(*split.core))
    frames = [pd.DataFrame(rows, columns=names)]
    frames += [raw(a, b) for a, b in split.edges]
    combined = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    if not combined.empty:
        combined = combined.groupby(list(keys), dropna=False, sort=True, as_index=False).sum()
    return combined[names].astype(dict(values)).reset_index(drop=True)


def _map_totals(
    engine: Engine, column: str, where: ColumnElement[bool], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """(key..., map key, count) summed in SQL over the rollup rows `where` selects: the JSON
    map's [key, count] pairs unnested by the database (json_each / json_array_elements), so
    no pair crosses the wire or is decoded in Python."""
    value: ColumnElement[Any]
    count: ColumnElement[Any]
    if is_sqlite(engine):
        entry = func.json_each(_r[column]).table_valued("value").alias("entry")
        value = func.json_extract(entry.c.value, "$[0]")
        count = func.json_extract(entry.c.value, "$[1]")
    else:
        entry = func.json_array_elements(_r[column]).table_valued("value").alias("entry")
        value = entry.c.value.op("->>")(0)
        count = cast(entry.c.value.op("->>")(1), BigInteger)
    columns = [_r[c] for c in keys]
    statement = (
        select(*columns, value, func.sum(count))
        .select_from(prediction_rollups.join(entry, true()))  # each row with its own pairs
        .where(where)
        .group_by(*columns, value)
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def _labelled(
    rows: Iterable[tuple[Any, ...]], label: Callable[[Any], Any]
) -> list[tuple[Any, ...]]:
    """(key..., label(map key), count) rows, added up where labels meet."""
    totals: Counter[tuple[Any, ...]] = Counter()
    for *key, value, n in rows:
        totals[(*key, label(value))] += int(n)
    return [(*key, n) for key, n in totals.items()]


def _mapped(
    engine: Engine,
    model_name: str | None,
    column: str,
    label: Callable[[Any], Any] = lambda value: value,
) -> Callable[[datetime, datetime], list[tuple[Any, ...]]]:
    """The counts of one map column per group and (labelled) map key, over whole minutes."""

    def core(start: datetime, end: datetime) -> list[tuple[Any, ...]]:
        where = _core(start, end, model_name)
        return _labelled(_map_totals(engine, column, where, GROUP_COLUMNS), label)

    return core


def class_counts(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """`aggregates.class_counts` from the rollups."""
    return _counted(
        engine,
        start,
        end,
        model_name,
        _mapped(engine, model_name, "classes"),
        lambda a, b: aggregates.class_counts(engine, a, b, model_name),
        [*GROUP_COLUMNS, "predicted_class"],
        {"n": "int64"},
    )


def status_counts(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """`aggregates.status_counts` from the rollups."""
    return _counted(
        engine,
        start,
        end,
        model_name,
        _mapped(engine, model_name, "statuses"),
        lambda a, b: aggregates.status_counts(engine, a, b, model_name),
        [*GROUP_COLUMNS, "status"],
        {"n": "int64"},
    )


def compute_totals(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """`aggregates.compute_totals` from the rollups."""
    sums = aggregates.COMPUTE_SUMS
    return _counted(
        engine,
        start,
        end,
        model_name,
        lambda a, b: _summed(
            engine,
            _core(a, b, model_name),
            [*(_r[c] for c in GROUP_COLUMNS), _r.resource_class],
            [func.sum(_r[s]) for s in sums],
        ),
        lambda a, b: aggregates.compute_totals(engine, a, b, model_name),
        [*GROUP_COLUMNS, "resource_class"],
        {"n": "int64", "requests": "int64", "compute_ms": "float64", "busy_ms": "float64"},
    )


DAY_SECONDS = 86_400
_EPOCH_DAY = date(1970, 1, 1)


def _compute_core(
    engine: Engine, model_name: str | None, extra: Sequence[ColumnElement[Any]]
) -> Callable[[datetime, datetime], list[tuple[Any, ...]]]:
    """COMPUTE_SUMS per group, `extra` keys and resource class, over whole minutes."""

    def core(start: datetime, end: datetime) -> list[tuple[Any, ...]]:
        keys = [*(_r[c] for c in GROUP_COLUMNS), *extra, _r.resource_class]
        sums = [func.sum(_r[s]) for s in aggregates.COMPUTE_SUMS]
        return _summed(engine, _core(start, end, model_name), keys, sums)

    return core


def daily_compute_totals(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """`aggregates.daily_compute_totals` from the rollups (a minute lies in one UTC day)."""
    day = aggregates.epoch_seconds(engine, _r.minute) // DAY_SECONDS
    core = _compute_core(engine, model_name, [day])

    def dated(a: datetime, b: datetime) -> list[tuple[Any, ...]]:
        width = len(GROUP_COLUMNS)
        return [
            (*row[:width], _EPOCH_DAY + timedelta(days=int(row[width])), *row[width + 1 :])
            for row in core(a, b)
        ]

    return _counted(
        engine,
        start,
        end,
        model_name,
        dated,
        lambda a, b: aggregates.daily_compute_totals(engine, a, b, model_name),
        [*GROUP_COLUMNS, "day", "resource_class"],
        {"n": "int64", "requests": "int64", "compute_ms": "float64", "busy_ms": "float64"},
    )


def hourly_busy_ms(engine: Engine, start: datetime, end: datetime) -> pd.DataFrame:
    """`aggregates.hourly_busy_ms` from the rollups (a minute lies in one UTC hour)."""
    hour = aggregates.epoch_seconds(engine, _r.minute) // aggregates.HOUR_SECONDS

    def core(a: datetime, b: datetime) -> list[tuple[Any, ...]]:
        rows = _summed(engine, _core(a, b, None), [hour], [func.sum(_r.busy_ms)])
        seconds = aggregates.HOUR_SECONDS
        return [(pd.Timestamp(int(h) * seconds, unit="s", tz="UTC"), busy) for h, busy in rows]

    frame = _counted(
        engine,
        start,
        end,
        None,
        core,
        lambda a, b: aggregates.hourly_busy_ms(engine, a, b),
        ["hour"],
        {"busy_ms": "float64"},
    )
    return frame.sort_values("hour").reset_index(drop=True)


def first_prediction_day(engine: Engine, before: datetime) -> date | None:
    """`aggregates.first_prediction_day` from the rollups' first times (raw rows for the
    partial minute before `before`)."""
    core_end = _floor_minute(before)
    with engine.connect() as connection:
        statement = select(func.min(_r.first_ts)).where(_r.minute < core_end)
        first = connection.execute(statement).scalar()
    if first is not None:
        return to_utc(first).date()
    if core_end == to_utc(before):
        return None
    return aggregates.first_prediction_day(engine, before, since=core_end)


def coarse_bins(edges: Sequence[float]) -> list[int] | None:
    """The coarse bin of each fine bin, when every interior edge is a fine-grid edge (the only
    edges the fine counts answer exactly); None otherwise."""
    aggregates.check_edges(edges)
    fine_inner = FINE_EDGES[1:-1]
    position = {edge: i for i, edge in enumerate(fine_inner)}
    inner = [float(e) for e in edges[1:-1]]
    if any(e not in position for e in inner):
        return None
    # A value's bin counts the interior edges at or below it; fine bin k lies above k of them.
    cuts = sorted(position[e] for e in inner)
    return [sum(c < k for c in cuts) for k in range(len(fine_inner) + 1)]


def confidence_histogram(
    engine: Engine,
    start: datetime,
    end: datetime,
    edges: Sequence[float],
    model_name: str | None = None,
) -> pd.DataFrame:
    """`aggregates.confidence_histogram` from the fine bins, or from raw rows when an edge is
    off the fine grid."""
    mapping = coarse_bins(edges)
    if mapping is None:
        return aggregates.confidence_histogram(engine, start, end, edges, model_name)
    return _counted(
        engine,
        start,
        end,
        model_name,
        _mapped(engine, model_name, "confidence_bins", lambda k: mapping[int(k)]),
        lambda a, b: aggregates.confidence_histogram(engine, a, b, edges, model_name),
        [*GROUP_COLUMNS, "bin"],
        {"n": "int64"},
    ).astype({"bin": "int64"})


def hourly_counts(
    engine: Engine, start: datetime, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """`aggregates.hourly_counts` from the rollups; from raw rows unless both ends are whole
    minutes (hours counted from a start inside a minute split that minute)."""
    if not (aligned(start) and aligned(end)):
        return aggregates.hourly_counts(engine, start, end, model_name)
    origin = int(to_utc(start).timestamp())
    seconds = aggregates.epoch_seconds(engine, _r.minute)
    hour = (seconds - origin) // aggregates.HOUR_SECONDS
    return _counted(
        engine,
        start,
        end,
        model_name,
        lambda a, b: _summed(
            engine, _core(a, b, model_name), [*(_r[c] for c in KEY_COLUMNS), hour], [func.sum(_r.n)]
        ),
        lambda a, b: aggregates.hourly_counts(engine, a, b, model_name),  # never: no ends
        [*KEY_COLUMNS, "hour"],
        {"n": "int64"},
    ).astype({"hour": "int64"})


def first_predictions(
    engine: Engine, start: datetime | None, end: datetime, model_name: str | None = None
) -> pd.DataFrame:
    """`aggregates.first_predictions` from the rollups' first successful times."""
    lower = start if start is not None else _first_minute(engine)
    if lower is None or to_utc(lower) >= to_utc(end):
        return aggregates.first_predictions(engine, start, end, model_name)
    split = _split(lower, end)
    firsts: dict[tuple[Any, ...], datetime] = {}
    if split.core is not None:
        keys = [_r[c] for c in KEY_COLUMNS]
        where = _core(*split.core, model_name)
        for *group, first in _summed(engine, where, keys, [func.min(_r.first_ok_ts)]):
            if first is not None:
                firsts[tuple(group)] = to_utc(first)
    for a, b in split.edges:
        for row in aggregates.first_predictions(engine, a, b, model_name).itertuples(index=False):
            key, ts = tuple(row[:3]), to_utc(row[3])
            firsts[key] = min(firsts.get(key, ts), ts)
    rows = [(*key, ts) for key, ts in sorted(firsts.items())]
    return pd.DataFrame(rows, columns=[*KEY_COLUMNS, "first_ts"])


def _first_minute(engine: Engine) -> datetime | None:
    with engine.connect() as connection:
        first = connection.execute(select(func.min(_r.minute))).scalar()
    return None if first is None else to_utc(first)


def _overlapping(periods: Sequence[Period]) -> bool:
    """Whether a row could fall in two of the periods (then raw rows answer: OR-ed periods
    count it once, whole minutes from one period and an end from another would twice)."""
    for (m1, v1, t1, s1, e1), (m2, v2, t2, s2, e2) in itertools.combinations(periods, 2):
        same_key = (m1, v1) == (m2, v2) and (t1 is None or t2 is None or t1 == t2)
        if same_key and to_utc(s1) < to_utc(e2) and to_utc(s2) < to_utc(e1):
            return True
    return False


def _period_counted(
    engine: Engine,
    periods: Sequence[Period],
    column: str,
    label: Callable[[Any], Any],
    raw: Callable[[Sequence[Period]], pd.DataFrame],
    name: str,
) -> pd.DataFrame:
    """Per key and labelled map key of `column`, each period's whole minutes from the rollups,
    its ends from raw rows."""
    if not periods:
        raise ValueError("at least one period is needed")
    if _overlapping(periods):
        return raw(periods)
    totals: Counter[tuple[Any, ...]] = Counter()
    edges: list[Period] = []
    for model, version, tenant, start, end in periods:
        split = _split(start, end)
        edges += [(model, version, tenant, a, b) for a, b in split.edges]
        if split.core is None:
            continue
        where = and_(_core(*split.core, model), _r.model_version == version)
        if tenant is not None:
            where = and_(where, _r.tenant == tenant)
        for *key, n in _labelled(_map_totals(engine, column, where, KEY_COLUMNS), label):
            totals[tuple(key)] += n
    names = [*KEY_COLUMNS, name, "n"]
    frames = [pd.DataFrame([(*k, n) for k, n in totals.items()], columns=names)]
    if edges:
        frames.append(raw(edges))
    combined = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    if not combined.empty:
        combined = combined.groupby(names[:-1], dropna=False, sort=True, as_index=False).sum()
    return combined[names].astype({"n": "int64"}).reset_index(drop=True)


def period_class_counts(engine: Engine, periods: Sequence[Period]) -> pd.DataFrame:
    """`aggregates.period_class_counts` from the rollups."""
    return _period_counted(
        engine,
        periods,
        "classes",
        lambda value: value,
        lambda ps: aggregates.period_class_counts(engine, ps),
        "predicted_class",
    )


def period_confidence_histogram(
    engine: Engine, periods: Sequence[Period], edges: Sequence[float]
) -> pd.DataFrame:
    """`aggregates.period_confidence_histogram` from the fine bins (raw rows when an edge is
    off the fine grid)."""
    mapping = coarse_bins(edges)
    if mapping is None:
        return aggregates.period_confidence_histogram(engine, periods, edges)
    frame = _period_counted(
        engine,
        periods,
        "confidence_bins",
        lambda k: mapping[int(k)],
        lambda ps: aggregates.period_confidence_histogram(engine, ps, edges),
        "bin",
    )
    return frame.astype({"bin": "int64"})
