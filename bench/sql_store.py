"""Large seeded PostgreSQL stores generated inside PostgreSQL (INSERT ... SELECT), for issue 19.

Python cannot write 50M rows in a session; PostgreSQL can. The store is a schema migrated by
the real migrations (`storage.migrate.upgrade`), so its tables, indexes and cursor are those of a
production store. Traffic spans `days` ending at `END` with a daily cycle, quieter weekends and
a slow growth; per row, the model version, tenant, endpoint, status, class, confidence (beta),
latency and compute time (gamma) are drawn with the same shares as `bench_monitors.generate`
(inverse-CDF tables computed here with scipy, indexed in SQL). One UTC day is one transaction
(seeded by its date), so an interrupted generation resumes at the first missing day, and a store
of N rows is exactly the first N rows of any larger store (same minutes, same draws).

Bulk requests (`classify_tickets`) write `<id>:<k>` ids; k is drawn below the batch size, so a
share 1/batch of those rows counts as a request, as in a real log. Audit rows are not generated:
neither the monitors, the fold nor the FinOps report read `audit_log`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION

END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday: ISO week 2026-W48 is the last full week
DAYS = 30
QUANTILES = 10_000  # points of each inverse-CDF table
MINUTES_TABLE = "_bench_minutes"  # per minute: rows and rows before it (bench bookkeeping)

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Layout:
    """The first `records` of `total` predictions spread over the minutes of `days` days
    ending at `END` (a smaller store is a prefix of the larger one)."""

    records: int
    total: int
    days: int = DAYS

    @property
    def start(self) -> datetime:
        return END - timedelta(days=self.days)

    def minute_counts(self) -> np.ndarray:
        """Rows per minute: a daily cycle (peak 15:00 UTC), weekends at 55 %, +20 % over the
        span; the sum is exactly `total`."""
        minutes = self.days * 1440
        t = np.arange(minutes)
        hour = (t % 1440) / 60
        weekday = ((self.start.weekday() + t // 1440) % 7) < 5
        weight = (1 + 0.6 * np.sin(2 * np.pi * (hour - 9) / 24)) * np.where(weekday, 1.0, 0.55)
        weight *= 1 + 0.2 * t / minutes
        cumulative = np.round(self.total * np.cumsum(weight) / weight.sum()).astype(np.int64)
        return np.diff(np.concatenate([[0], cumulative]))


def _inverse_cdf(distribution: Any) -> list[float]:
    points = (np.arange(QUANTILES) + 0.5) / QUANTILES
    return [float(v) for v in distribution.ppf(points)]


def _tables() -> dict[str, list[float]]:
    from scipy import stats

    return {
        "conf_ok": _inverse_cdf(stats.beta(8, 2)),
        "conf_drift": _inverse_cdf(stats.beta(4, 2)),  # globex: lower confidence
        "latency": _inverse_cdf(stats.gamma(2.0, scale=4.0)),
        "compute": _inverse_cdf(stats.gamma(2.0, scale=0.3)),
        "overhead": _inverse_cdf(stats.gamma(2.0, scale=0.15)),  # busy time beyond inference
    }


def _pick(table: str, u: str) -> str:
    return f"(:{table})[1 + floor({u} * {QUANTILES})::int]"


# One day's rows. Draws are made once per row (a materialized CTE: a volatile function in an
# inlined subquery could be evaluated once per reference), in id order.
_DAY_INSERT = f"""
WITH draws AS MATERIALIZED (
    SELECT m.cum + k AS idx,
           m.minute + ((k + 0.5) * 60.0 / m.cnt) * interval '1 second' AS ts,
           random() AS u_v, random() AS u_t, random() AS u_e, random() AS u_s,
           random() AS u_c, random() AS u_k, random() AS u_l, random() AS u_m,
           random() AS u_o, random() AS u_r, random() AS u_b, random() AS u_z
    FROM {MINUTES_TABLE} m, generate_series(0, m.cnt - 1) AS k
    WHERE m.minute >= :day AND m.minute < :day + interval '1 day' AND m.cum + k < :records
), rows AS (
    SELECT d.*,
           CASE WHEN u_v < 0.45 THEN 0 WHEN u_v < 0.80 THEN 1 ELSE 2 END AS v,
           CASE WHEN u_t < 0.35 THEN 'acme' WHEN u_t < 0.60 THEN 'globex'
                WHEN u_t < 0.80 THEN 'initech' WHEN u_t < 0.95 THEN 'umbrella'
                ELSE 'hooli' END AS tenant,
           CASE WHEN u_s < 0.985 THEN 'ok' WHEN u_s < 0.995 THEN 'model_error'
                ELSE 'timeout' END AS status,
           (ARRAY[4, 16, 64])[1 + floor(u_z * 3)::int] AS bulk
    FROM draws d
), shaped AS (
    SELECT r.*,
           CASE WHEN v = 2 THEN 'predict_risk' WHEN u_e < 0.7 THEN 'classify_ticket'
                ELSE 'classify_tickets' END AS endpoint
    FROM rows r
)
INSERT INTO predictions (request_id, ts, tenant, endpoint, model_name, model_version,
    predicted_class, confidence, latency_ms, compute_ms, batch_size, status, region,
    resource_class, error_message, busy_ms)
SELECT
    CASE WHEN endpoint = 'classify_tickets'
         THEN 'g-' || idx || ':' || floor(u_b * bulk)::int ELSE 'g-' || idx END,
    ts, tenant, endpoint,
    CASE WHEN v = 2 THEN 'risk_scorer' ELSE 'ticket_classifier' END,
    (ARRAY['v1', 'v2', 'r1'])[v + 1],
    CASE WHEN status <> 'ok' THEN NULL
         WHEN v = 2 THEN CASE WHEN u_k < 0.1 THEN 'high' WHEN u_k < 0.8 THEN 'low'
                              ELSE 'medium' END
         WHEN tenant = 'globex' AND u_k < 0.3 THEN 'billing'
         ELSE (ARRAY['account', 'billing', 'other', 'shipping', 'technical'])
              [1 + floor(u_c * 5)::int] END,
    CASE WHEN status <> 'ok' THEN NULL WHEN tenant = 'globex' THEN {_pick("conf_drift", "u_c")}
         ELSE {_pick("conf_ok", "u_c")} END,
    {_pick("latency", "u_l")},
    {_pick("compute", "u_m")},
    CASE WHEN endpoint = 'classify_tickets' THEN bulk ELSE 1 END,
    status,
    CASE WHEN u_r < 0.5 THEN 'eu' ELSE 'us' END,
    CASE WHEN v = 1 THEN 'gpu' ELSE 'cpu' END,
    CASE status WHEN 'model_error' THEN 'ValueError: model raised'
                WHEN 'timeout' THEN 'inference exceeded its deadline' END,
    {_pick("compute", "u_m")} + {_pick("overhead", "u_o")}
FROM shaped
ORDER BY idx
"""


def generate(engine: Engine, layout: Layout, say: Say = _say) -> float | None:
    """Fill an empty or partly generated store up to `layout.records` rows, a day per
    transaction; seconds spent (None when it already held them all)."""
    counts = layout.minute_counts()
    cum = np.concatenate([[0], np.cumsum(counts)[:-1]])
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {MINUTES_TABLE} "
                "(minute timestamptz PRIMARY KEY, cnt int NOT NULL, "
                "cum bigint NOT NULL)"
            )
        )
        stored = connection.execute(text(f"SELECT count(*) FROM {MINUTES_TABLE}")).scalar()
        if stored != len(counts):
            connection.execute(text(f"TRUNCATE {MINUTES_TABLE}"))
            rows = [
                {"minute": layout.start + timedelta(minutes=i), "cnt": int(c), "cum": int(s)}
                for i, (c, s) in enumerate(zip(counts, cum, strict=True))
            ]
            connection.execute(
                text(f"INSERT INTO {MINUTES_TABLE} VALUES (:minute, :cnt, :cum)"), rows
            )
        newest = connection.execute(text("SELECT max(ts), count(*) FROM predictions")).one()
    if newest[1] >= layout.records:
        return None
    tables = _tables()
    statement = text(_DAY_INSERT).bindparams(
        *(bindparam(name, type_=ARRAY(DOUBLE_PRECISION)) for name in tables)
    )
    # Each day is one transaction: the day of the newest row is complete.
    first_day = 0 if newest[0] is None else (newest[0] - layout.start).days + 1
    started = time.perf_counter()
    for day in range(first_day, layout.days):
        day_start = layout.start + timedelta(days=day)
        if cum[day * 1440] >= layout.records:
            break
        began = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL synchronous_commit = off"))
            connection.execute(text("SELECT setseed(:seed)"), {"seed": (day + 1) / (DAYS + 2)})
            inserted = connection.execute(
                statement, {"day": day_start, "records": layout.records, **tables}
            ).rowcount
        say(f"  {day_start:%Y-%m-%d}: {inserted:,} rows in {time.perf_counter() - began:.0f} s")
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


# --- rollups filled in SQL (beyond the part folded by the real fold) -------------------------

_KEYS = "mi, model_name, model_version, tenant, endpoint, rc"


def _map(column: str, where: str = "TRUE") -> str:
    """One map column as the fold stores it: [[key, count], ...] per key, null key first."""
    return f"""SELECT {_KEYS}, json_agg(json_build_array(k, c) ORDER BY k NULLS FIRST) AS m
        FROM (SELECT {_KEYS}, {column} AS k, count(*) AS c FROM b WHERE {where}
              GROUP BY {_KEYS}, k) x GROUP BY {_KEYS}"""


_FILL = f"""
WITH b AS MATERIALIZED (
    SELECT floor(extract(epoch FROM ts))::bigint / 60 AS mi, model_name, model_version, tenant,
           endpoint, coalesce(resource_class, 'cpu') AS rc, request_id, ts, status,
           predicted_class, confidence, latency_ms, compute_ms, busy_ms
    FROM predictions WHERE id > :lo AND id <= :hi
), tot AS (
    SELECT {_KEYS}, count(*) AS n,
           sum(CASE WHEN request_id LIKE '%:%' AND request_id NOT LIKE '%\\:0' THEN 0 ELSE 1 END)
               AS requests,
           sum(latency_ms) AS latency_ms, sum(compute_ms) AS compute_ms,
           sum(coalesce(busy_ms, compute_ms)) AS busy_ms, min(ts) AS first_ts,
           max(ts) AS last_ts, min(CASE WHEN status = 'ok' THEN ts END) AS first_ok_ts
    FROM b GROUP BY {_KEYS}
), st AS ({_map("status")}),
cl AS ({_map("predicted_class", "status = 'ok'")}),
cb AS ({
    _map(
        "width_bucket(confidence, CAST(:fine AS float8[]))",
        "status = 'ok' AND confidence IS NOT NULL",
    )
}),
lb AS ({_map("width_bucket(latency_ms, CAST(:latency AS float8[]))")})
INSERT INTO prediction_rollups (minute, model_name, model_version, tenant, endpoint,
    resource_class, n, requests, latency_ms, compute_ms, busy_ms, statuses, classes,
    confidence_bins, latency_buckets, first_ts, last_ts, first_ok_ts)
SELECT to_timestamp(tot.mi * 60), tot.model_name, tot.model_version, tot.tenant, tot.endpoint,
       tot.rc, n, requests, latency_ms, compute_ms, busy_ms, st.m,
       coalesce(cl.m, '[]'::json), coalesce(cb.m, '[]'::json), lb.m,
       first_ts, last_ts, first_ok_ts
FROM tot
JOIN st USING ({_KEYS}) JOIN lb USING ({_KEYS})
LEFT JOIN cl USING ({_KEYS}) LEFT JOIN cb USING ({_KEYS})
"""


def fill_rollups(engine: Engine, say: Say = _say) -> int:
    """Fill the rollups of every prediction above the cursor in SQL, a day per transaction,
    and move the cursor: the same rows the fold would write (`verify_filled` checks), for a
    generated store (ids in time order; the cursor on a minute's end: `fold_to_minute_end`)."""
    from core.confidence_grid import FINE_EDGES
    from storage.rollups import LATENCY_EDGES

    edges = {"fine": list(FINE_EDGES[1:-1]), "latency": list(LATENCY_EDGES[1:-1])}
    total = 0
    while True:
        with engine.begin() as connection:
            last = connection.execute(
                text("SELECT last_id FROM rollup_cursor WHERE id = 1")
            ).scalar()
            day = connection.execute(
                text(
                    "SELECT date_trunc('day', ts, 'UTC') FROM predictions WHERE id > :c "
                    "ORDER BY id LIMIT 1"
                ),
                {"c": last},
            ).scalar()
            if day is None:
                return total
            high = connection.execute(
                text("SELECT max(id) FROM predictions WHERE ts < :d + interval '1 day'"),
                {"d": day},
            ).scalar()
            began = time.perf_counter()
            # The CTEs' row estimates are poor: nested loops over them are quadratic.
            connection.execute(text("SET LOCAL enable_nestloop = off"))
            connection.execute(text(_FILL), {"lo": last, "hi": high, **edges})
            connection.execute(
                text("UPDATE rollup_cursor SET last_id = :h WHERE id = 1"), {"h": high}
            )
        total += high - last
        say(f"  filled {day:%Y-%m-%d}: {high - last:,} rows in {time.perf_counter() - began:.0f} s")
