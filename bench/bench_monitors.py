"""Monitors over 1M and 10M stored predictions on SQLite and PostgreSQL, and Evidently beside them.

For each backend and size: a seeded store is loaded once (COPY on PostgreSQL, one executemany
transaction on SQLite; reused on later runs), then a fresh process runs all four monitors over
the whole range (every model, version and tenant, against the registered baselines) and stores
the rows; its wall time and peak RSS are reported. Evidently runs in its own process on the
same raw rows (confidence and class of every successful prediction of the 1M store, read from
it, as one group against a 5,000-row reference), with the same metrics: PSI, Jensen-Shannon, KS
and Wasserstein for confidence, PSI and JS for class. The monitors compute these per model
version, for each tenant and for all tenants; Evidently is timed once on all rows as one group
(its floor) and once with the same groups (a report per version, GroupBy tenant).
Targets: 10M on PostgreSQL <= 30 s with peak RSS <= 500 MB; >= 10x faster than Evidently.

`--rollups` (issue 19) measures instead, on a scratch schema dropped afterwards: the fold of
the whole store into the per-minute rollups (rows/s), then the monitors of its middle hour and
of its whole span (`--span-hours`) from the rollups and from raw rows (same results checked;
best of `--repeat`, in process).
Target: a one-hour window's monitors from rollups <= 0.5 s, whatever the store holds.

`--generate sql` (issue 19's targets) builds a `--records` store (default 50M over 30 days)
and its first `--compare-records` rows in PostgreSQL itself (bench/sql_store.py), in schemas
kept for `--reuse`; folds them with the real fold (rows/s and rows per CPU second; past
`--fold-limit` the rest is filled in SQL and checked against the fold's aggregation on a
sample), then times one hour's monitors in both stores (rollups and raw), a weekday hour cold
and as a scheduler tick, the weekly FinOps report, and Evidently on the small store's rows.
Targets: one hour <= 0.5 s and within 20 % at 1M and 50M; FinOps <= 5 s at 50M; fold >=
50,000 records/s; >= 20x faster than Evidently with the same groups.

    .venv/bin/python bench/bench_monitors.py                      # 1M and 10M, both backends
    .venv/bin/python bench/bench_monitors.py --sizes 100000 --backends sqlite \\
        --evidently-rows 100000
    .venv/bin/python bench/bench_monitors.py --rollups --sizes 1000000 --backends postgresql \\
        --span-hours 2
    nice -n 10 .venv/bin/python bench/bench_monitors.py --generate sql --records 50000000 \\
        --compare-records 1000000 --schema bench50m --reuse --fold-limit 1000000 --repeat 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from core.contracts import PREDICTION_COLUMNS  # noqa: E402
from monitors.histograms import FINE_EDGES  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2026, 11, 2, tzinfo=UTC)
SPAN = timedelta(days=7)
CHUNK = 1_000_000
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
TENANT_SHARES = (0.35, 0.25, 0.2, 0.15, 0.05)
TICKET_CLASSES = ("account", "billing", "other", "shipping", "technical")
RISK_CLASSES = ("high", "low", "medium")
VERSIONS = (("ticket_classifier", "v1"), ("ticket_classifier", "v2"), ("risk_scorer", "r1"))
# Nullable extras the generator leaves out (stored as NULL).
UNLOADED = ("probabilities", "features", "client_request_id", "input_hmac", "busy_ms")
LOADED_COLUMNS = [c for c in PREDICTION_COLUMNS if c not in UNLOADED]
TARGET_SECONDS, TARGET_RSS_MB, TARGET_SPEEDUP = 30.0, 500.0, 10.0


def generate(
    start_row: int, n: int, total: int, seed: int = 7, span: timedelta = SPAN
) -> pd.DataFrame:
    """Rows start_row .. start_row+n of a deterministic store of `total` predictions."""
    rng = np.random.default_rng([seed, start_row])
    index = np.arange(start_row, start_row + n)
    version = rng.choice(3, n, p=[0.45, 0.35, 0.2])
    tenant = rng.choice(len(TENANTS), n, p=TENANT_SHARES)
    drifted = tenant == 1  # globex drifts: lower confidence, more billing
    confidence = np.where(drifted, rng.beta(4, 2, n), rng.beta(8, 2, n)).round(6)
    ticket = np.where(drifted & (rng.random(n) < 0.3), 1, rng.choice(len(TICKET_CLASSES), n))
    risk = rng.choice(len(RISK_CLASSES), n, p=[0.1, 0.7, 0.2])
    is_risk = version == 2
    status = rng.choice(np.array(["ok", "model_error", "timeout"]), n, p=[0.985, 0.01, 0.005])
    ok = status == "ok"
    ts = START + pd.to_timedelta(index * (span.total_seconds() / total), unit="s")
    frame = pd.DataFrame(
        {
            "request_id": pd.Series(index).map("b-{:09d}".format),
            "ts": ts,
            "tenant": np.array(TENANTS)[tenant],
            "endpoint": np.where(
                is_risk,
                "predict_risk",
                np.where(rng.random(n) < 0.7, "classify_ticket", "classify_tickets"),
            ),
            "model_name": np.array([m for m, _ in VERSIONS])[version],
            "model_version": np.array([v for _, v in VERSIONS])[version],
            "predicted_class": np.where(
                is_risk, np.array(RISK_CLASSES)[risk], np.array(TICKET_CLASSES)[ticket]
            ),
            "confidence": confidence,
            "latency_ms": rng.gamma(2.0, 4.0, n).round(3),
            "compute_ms": rng.gamma(2.0, 0.3, n).round(4),
            "batch_size": rng.choice([1, 4, 16, 64], n),
            "status": status,
            "region": np.where(rng.random(n) < 0.5, "eu", "us"),
            "resource_class": "cpu",
            "error_message": None,
        }
    )
    frame.loc[~ok, ["predicted_class", "confidence"]] = None
    return frame[LOADED_COLUMNS]


def baseline_metadata(model_name: str, seed: int = 11) -> dict[str, Any]:
    """A registered version's metadata: the validation reference the monitors compare with."""
    rng = np.random.default_rng(seed)
    classes = RISK_CLASSES if model_name == "risk_scorer" else TICKET_CLASSES
    confidence = rng.beta(8, 2, 5000)
    counts, _ = np.histogram(confidence, FINE_EDGES)
    predicted = rng.choice(len(classes), 5000)
    class_counts = {c: int((predicted == i).sum()) for i, c in enumerate(classes)}
    return {
        "classes": list(classes),
        "evaluation": {
            "reference": {
                "n": 5000,
                "confidence_histogram": {"edges": FINE_EDGES.tolist(), "counts": counts.tolist()},
                "confidence_quantile_edges": [
                    0.0,
                    *np.quantile(confidence, np.arange(1, 10) / 10).tolist(),
                    1.0,
                ],
                "class_counts": class_counts,
                "class_shares": {c: n / 5000 for c, n in class_counts.items()},
                "mean_confidence": float(confidence.mean()),
            }
        },
    }


# ------------------------------------------------------------------------------ stores


def store_url(
    backend: str, size: int, workdir: Path, postgres_url: str, prefix: str = "bench"
) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'{prefix}-{size}.db'}"
    return f"{postgres_url}?options=-csearch_path%3D{prefix}_{size}"


def prepare_store(
    backend: str,
    size: int,
    url: str,
    postgres_url: str,
    prefix: str = "bench",
    span: timedelta = SPAN,
) -> float | None:
    """Create, migrate and fill the store unless it already holds `size` rows; load seconds."""
    from sqlalchemy import func, insert, select, text

    from storage.engine import create_store_engine
    from storage.migrate import upgrade
    from storage.schema import model_versions, predictions

    if backend == "postgresql":
        admin = create_store_engine(postgres_url)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {prefix}_{size}"))
        admin.dispose()
    upgrade(url)
    engine = create_store_engine(url)
    with engine.connect() as connection:
        existing = connection.execute(select(func.count()).select_from(predictions)).scalar()
    if existing == size:
        engine.dispose()
        return None
    with engine.begin() as connection:
        connection.execute(predictions.delete())
        connection.execute(model_versions.delete())
        for model_name, version in VERSIONS:
            connection.execute(
                insert(model_versions).values(
                    model_name=model_name,
                    model_version=version,
                    created_at=START - timedelta(days=30),
                    snapshot_id="0" * 64,
                    preprocessing_version="1",
                    labels={},
                    metadata=baseline_metadata(model_name),
                )
            )
    started = time.perf_counter()
    for offset in range(0, size, CHUNK):
        chunk = generate(offset, min(CHUNK, size - offset), size, span=span)
        if backend == "postgresql":
            _copy_postgres(engine, chunk)
        else:
            _insert_sqlite(url, chunk)
        print(f"  loaded {offset + len(chunk):>10,} rows", file=sys.stderr, flush=True)
    loaded = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return loaded


def _copy_postgres(engine: Any, chunk: pd.DataFrame) -> None:
    buffer = io.StringIO()
    chunk.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00:00")
    columns = ", ".join(LOADED_COLUMNS)
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY predictions ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            copy.write(buffer.getvalue())


def _insert_sqlite(url: str, chunk: pd.DataFrame) -> None:
    path = url.removeprefix("sqlite:///")
    values = chunk.assign(ts=chunk["ts"].dt.strftime("%Y-%m-%d %H:%M:%S.%f"))
    rows = values.astype(object).where(values.notna(), None).itertuples(index=False, name=None)
    placeholders = ", ".join("?" for _ in LOADED_COLUMNS)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA synchronous=OFF")
        connection.executemany(
            f"INSERT INTO predictions ({', '.join(LOADED_COLUMNS)}) VALUES ({placeholders})", rows
        )


# ------------------------------------------------------------------------------ measured runs


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss survives exec on Linux)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_monitors(url: str) -> dict[str, Any]:
    """Run all monitors over the whole range and store the rows (in this fresh process)."""
    imports = time.perf_counter()
    import scipy.stats  # noqa: F401 - a one-off import cost, reported as startup

    from core.config import AppConfig
    from core.timeutil import Window
    from monitors.baselines import BaselineStore
    from monitors.runner import run_monitors, store_results
    from storage.engine import create_store_engine

    engine = create_store_engine(url)
    startup = time.perf_counter() - imports
    idle_rss = peak_rss_mb()
    window = Window(START, START + SPAN)
    started = time.perf_counter()
    outcome = run_monitors(
        engine, window, AppConfig(), baselines=BaselineStore(engine, registry=None)
    )
    store_results(engine, outcome)
    wall = time.perf_counter() - started
    engine.dispose()
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "idle_rss_mb": idle_rss,
            "rows": len(outcome.results), "startup_s": startup}  # fmt: skip


def measure_evidently(url: str, rows: int) -> dict[str, Any]:
    """Evidently on the raw rows: the metrics once (one group), then per version and tenant."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.metrics.group_by import GroupBy
    from sqlalchemy import select

    from monitors.baselines import Baseline
    from monitors.drift_report import baseline_frame
    from storage.engine import create_store_engine
    from storage.schema import predictions

    idle_rss = peak_rss_mb()
    p = predictions.c
    engine = create_store_engine(url)
    started = time.perf_counter()
    statement = (
        select(p.model_name, p.model_version, p.tenant, p.confidence, p.predicted_class)
        .where(p.status == "ok")
        .order_by(p.id)
        .limit(rows)
    )
    with engine.connect() as connection:
        current = pd.DataFrame(
            connection.execute(statement).all(), columns=["model", "version", "tenant", "c", "k"]
        )
    read = time.perf_counter() - started
    engine.dispose()
    definition = DataDefinition(numerical_columns=["c"], categorical_columns=["k", "tenant"])
    methods = ("psi", "jensenshannon", "ks", "wasserstein")
    metrics = [ValueDrift(column="c", method=m) for m in methods]
    metrics += [ValueDrift(column="k", method=m) for m in methods[:2]]

    def reference_for(model_name: str) -> pd.DataFrame:
        baseline = Baseline.from_metadata(model_name, "-", baseline_metadata(model_name))
        rows = baseline_frame(baseline, 5000).rename(
            columns={"confidence": "c", "predicted_class": "k"}
        )
        # GroupBy splits the reference by tenant too: every tenant gets the whole baseline.
        return pd.concat([rows.assign(tenant=t) for t in TENANTS], ignore_index=True)

    def run(frame: pd.DataFrame, reference: pd.DataFrame, grouped: bool) -> None:
        chosen = [*metrics, *(GroupBy(m, "tenant") for m in metrics)] if grouped else metrics
        Report(chosen).run(
            Dataset.from_pandas(frame[["tenant", "c", "k"]], data_definition=definition),
            Dataset.from_pandas(reference[["tenant", "c", "k"]], data_definition=definition),
        )

    computed = time.perf_counter()
    run(current, reference_for("ticket_classifier"), grouped=False)
    compute = time.perf_counter() - computed
    computed = time.perf_counter()
    for (model_name, _), frame in current.groupby(["model", "version"]):
        run(frame, reference_for(str(model_name)), grouped=True)
    grouped = time.perf_counter() - computed
    return {"read_s": read, "compute_s": compute, "wall_s": read + compute,
            "grouped_compute_s": grouped, "grouped_wall_s": read + grouped,
            "peak_rss_mb": peak_rss_mb(), "idle_rss_mb": idle_rss,
            "rows": len(current)}  # fmt: skip


def in_fresh_process(mode: str, url: str, pycache: Path, rows: int = 0) -> dict[str, Any]:
    """Run a measurement in its own interpreter, so peak RSS is that of the run alone."""
    command = [sys.executable, __file__, "--measure", mode, "--url", url, "--rows", str(rows)]
    # Bytecode caches outside the venv: with PYTHONDONTWRITEBYTECODE every run would recompile
    # scipy and pandas, which measures the machine's setup rather than the monitors.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--evidently-rows", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / "var" / "bench")
    parser.add_argument("--repeat", type=int, default=2, help="monitor runs per store (best)")
    parser.add_argument("--rollups", action="store_true", help="rollups vs raw rows (issue 19)")
    parser.add_argument("--span-hours", type=float, default=168, help="--rollups: traffic span")
    parser.add_argument("--generate", choices=("sql",), help="SQL-generated stores (issue 19)")
    parser.add_argument("--records", type=int, default=50_000_000, help="--generate: big store")
    parser.add_argument("--compare-records", type=int, default=1_000_000,
                        help="--generate: the small store (the big one's first rows)")  # fmt: skip
    parser.add_argument("--days", type=int, default=30, help="--generate: the big store's span")
    parser.add_argument("--schema", default="bench50m", help="--generate: the big store's schema")
    parser.add_argument("--reuse", action="store_true", help="--generate: keep what is there")
    parser.add_argument(
        "--fold-limit",
        type=int,
        help="--generate: rows the real fold folds "
        "in the big store (the rest filled in SQL, checked on a sample day)",
    )
    parser.add_argument(
        "--refold",
        action="store_true",
        help="--generate: fold the small "
        "store again from an empty cursor (a fresh fold measurement)",
    )
    parser.add_argument(
        "--parts",
        default="monitors,verify,finops,evidently",
        help="--generate: the measurements to make",
    )
    parser.add_argument("--finops-week", default="2026-W48", help="--generate: the report's week")
    parser.add_argument("--measure", choices=("monitors", "evidently"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure == "monitors":
        print(json.dumps(measure_monitors(args.url)))
        return
    if args.measure == "evidently":
        print(json.dumps(measure_evidently(args.url, args.rows)))
        return
    if args.rollups:
        run_rollups_benchmark(args)
        return
    if args.generate == "sql":
        run_sql_benchmark(args)
        return
    run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> None:
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    results = []
    for backend in backends:
        for size in sizes:
            url = store_url(backend, size, args.workdir, args.postgres_url)
            print(f"{backend} {size:,}: preparing the store", file=sys.stderr, flush=True)
            loaded = prepare_store(backend, size, url, args.postgres_url)
            pycache = args.workdir / "pycache"
            runs = [in_fresh_process("monitors", url, pycache) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["wall_s"])
            results.append({"backend": backend, "size": size, "load_s": loaded, **best,
                            "first_s": runs[0]["wall_s"]})  # fmt: skip
            print(f"  monitors: {best['wall_s']:.2f} s", file=sys.stderr, flush=True)
    evidently = None
    evidently_size = min(sizes, key=lambda s: abs(s - args.evidently_rows))
    evidently_backend = "postgresql" if "postgresql" in backends else backends[0]
    if args.evidently_rows:
        url = store_url(evidently_backend, evidently_size, args.workdir, args.postgres_url)
        print(f"evidently on {args.evidently_rows:,} raw rows", file=sys.stderr, flush=True)
        evidently = in_fresh_process(
            "evidently", url, args.workdir / "pycache", args.evidently_rows
        )
    print_report(results, evidently, evidently_size, evidently_backend, args)


def print_report(
    results: list[dict[str, Any]],
    evidently: dict[str, Any] | None,
    evidently_size: int,
    evidently_backend: str,
    args: argparse.Namespace,
) -> None:
    print(f"\nmonitors over the whole store (4 monitors, all groups), best of {args.repeat}")
    print(f"{'backend':<11} {'predictions':>12} {'wall s':>8} {'first s':>8} "
          f"{'startup s':>9} {'peak RSS MB':>12} {'idle RSS MB':>12} {'rows':>6} "
          f"{'load s':>8}")  # fmt: skip
    for r in results:
        load = "reused" if r["load_s"] is None else f"{r['load_s']:.0f}"
        print(f"{r['backend']:<11} {r['size']:>12,} {r['wall_s']:>8.2f} {r['first_s']:>8.2f} "
              f"{r['startup_s']:>9.2f} {r['peak_rss_mb']:>12.0f} {r['idle_rss_mb']:>12.0f} "
              f"{r['rows']:>6} {load:>8}")  # fmt: skip
    print("\nratios")
    for r in results:
        if r["backend"] == "postgresql" and r["size"] >= 10_000_000:
            print(f"  {r['size']:,} on PostgreSQL: {r['wall_s'] / TARGET_SECONDS:.2f} of the "
                  f"{TARGET_SECONDS:.0f} s budget, {r['peak_rss_mb'] / TARGET_RSS_MB:.2f} of the "
                  f"{TARGET_RSS_MB:.0f} MB budget")  # fmt: skip
    if evidently is not None:
        e = evidently
        print(f"\nEvidently on {e['rows']:,} raw rows read from {evidently_backend}: "
              f"read {e['read_s']:.2f} s; compute once (one group) {e['compute_s']:.2f} s; "
              f"compute per model version and tenant {e['grouped_compute_s']:.2f} s; "
              f"peak RSS {e['peak_rss_mb']:.0f} MB")  # fmt: skip
        for r in results:
            if r["size"] != evidently_size:
                continue
            print(f"  monitors on {r['backend']} ({r['wall_s']:.2f} s): "
                  f"{e['grouped_wall_s'] / r['wall_s']:.1f}x faster than Evidently with the same "
                  f"groups (read + compute), {e['wall_s'] / r['wall_s']:.1f}x than one group, "
                  f"{e['compute_s'] / r['wall_s']:.1f}x than one group's compute alone; "
                  f"target >= {TARGET_SPEEDUP:.0f}x")  # fmt: skip
    print("\n" + json.dumps({"monitors": results, "evidently": evidently}, default=float))


# ------------------------------------------------------------------------------ rollups


def measure_rollups(url: str, repeat: int, span: timedelta) -> dict[str, Any]:
    """Fold the whole store afresh (rows/s), then time one hour's and the week's monitors from
    the rollups and from raw rows, checking both give the same results."""
    from sqlalchemy import delete, update

    from core.config import AppConfig
    from core.timeutil import Window
    from monitors.aggregate_source import aggregate_source
    from monitors.baselines import BaselineStore
    from monitors.runner import run_monitors
    from storage.engine import create_store_engine
    from storage.rollups import fold_pending
    from storage.schema import prediction_rollups, rollup_cursor

    engine = create_store_engine(url)
    with engine.begin() as connection:
        connection.execute(delete(prediction_rollups))
        connection.execute(update(rollup_cursor).values(last_id=0))
    started = time.perf_counter()
    folded = fold_pending(engine)
    fold_s = time.perf_counter() - started
    out: dict[str, Any] = {"folded": folded, "fold_s": fold_s, "fold_rows_per_s": folded / fold_s}
    baselines = BaselineStore(engine, registry=None)
    middle = START + span / 2
    hour = Window(middle, middle + timedelta(hours=1))
    for name, window in (("hour", hour), ("whole", Window(START, START + span))):
        results = {}
        for kind in ("raw", "rollups"):
            timings = []
            for _ in range(repeat):
                began = time.perf_counter()
                outcome = run_monitors(
                    engine,
                    window,
                    AppConfig(),
                    baselines=baselines,
                    source=aggregate_source(engine, kind),
                )
                timings.append(time.perf_counter() - began)
            out[f"{name}_{kind}_s"] = min(timings)
            results[kind] = sorted((r.key, r.status, r.n) for r in outcome.results)
        out[f"{name}_same_results"] = results["raw"] == results["rollups"]
    engine.dispose()
    return out


def run_rollups_benchmark(args: argparse.Namespace) -> None:
    from sqlalchemy import text

    from storage.engine import create_store_engine

    args.workdir.mkdir(parents=True, exist_ok=True)
    for backend in args.backends.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            prefix = "bench_rollups"
            url = store_url(backend, size, args.workdir, args.postgres_url, prefix)
            print(f"{backend} {size:,}: preparing the store", file=sys.stderr, flush=True)
            try:
                span = timedelta(hours=args.span_hours)
                loaded = prepare_store(backend, size, url, args.postgres_url, prefix, span)
                r = measure_rollups(url, args.repeat, span)
            finally:
                if backend == "postgresql":  # a scratch schema: gone with the run
                    admin = create_store_engine(args.postgres_url)
                    with admin.begin() as connection:
                        connection.execute(text(f"DROP SCHEMA IF EXISTS {prefix}_{size} CASCADE"))
                    admin.dispose()
            print(f"\n{backend}, {size:,} predictions over {args.span_hours:g} hours "
                  f"(loaded in {loaded or 0:.0f} s)")  # fmt: skip
            print(f"  fold: {r['folded']:,} rows in {r['fold_s']:.2f} s = "
                  f"{r['fold_rows_per_s']:,.0f} rows/s")  # fmt: skip
            for name in ("hour", "whole"):
                raw, rolled = r[f"{name}_raw_s"], r[f"{name}_rollups_s"]
                same = r[f"{name}_same_results"]
                print(f"  {name}: monitors from raw rows {raw:.3f} s, from rollups {rolled:.3f} s "
                      f"({raw / rolled:.1f}x), same results: {same}")  # fmt: skip
            print(json.dumps({"backend": backend, "size": size, **r}, default=float))


# ------------------------------------------------------------------------------ 50M (SQL-made)

FOLD_SLICE = 1_000_000  # predictions folded between two timing records


BACKENDS: set[int] = set()  # PostgreSQL backends of this process's engines (nice_backends)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its PostgreSQL backends (where readable):
    the fold's cost whatever else the shared machine runs."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in BACKENDS:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def sql_store_url(postgres_url: str, schema: str) -> str:
    return f"{postgres_url}?options=-csearch_path%3D{schema}"


def nice_backends(engine: Any) -> None:
    """Give the PostgreSQL backends of `engine` this process's niceness (where allowed): the
    heavy work of a generation or a fold runs in the server, not in this process."""
    from sqlalchemy import event

    niceness = os.nice(0)

    @event.listens_for(engine, "connect")
    def renice(dbapi_connection: Any, _: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        BACKENDS.add(pid)
        with contextlib.suppress(OSError):  # another user's process keeps its priority
            os.setpriority(os.PRIO_PROCESS, pid, niceness)


def prepare_sql_store(
    postgres_url: str,
    schema: str,
    layout: Any,
    reuse: bool,
    fold_limit: int | None = None,
    refold: bool = False,
) -> Any:
    """The migrated, generated and fully folded store of `layout` in `schema` (an engine)."""
    import sql_store
    from sqlalchemy import func, insert, select, text

    from storage.engine import create_store_engine
    from storage.migrate import upgrade
    from storage.schema import model_versions

    admin = create_store_engine(postgres_url)
    with admin.begin() as connection:
        if not reuse:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    admin.dispose()
    url = sql_store_url(postgres_url, schema)
    upgrade(url)
    engine = create_store_engine(url)
    nice_backends(engine)
    with engine.begin() as connection:
        if not connection.execute(select(func.count()).select_from(model_versions)).scalar():
            for model_name, version in VERSIONS:
                connection.execute(
                    insert(model_versions).values(
                        model_name=model_name,
                        model_version=version,
                        created_at=layout.start - timedelta(days=30),
                        snapshot_id="0" * 64,
                        preprocessing_version="1",
                        labels={},
                        metadata=baseline_metadata(model_name),
                    )
                )
        connection.execute(
            text(
                "CREATE TABLE IF NOT EXISTS _bench_fold (id serial PRIMARY KEY, "
                "rows int NOT NULL, seconds float NOT NULL, "
                "load1 float NOT NULL, at timestamptz NOT NULL DEFAULT now())"
            )
        )
        connection.execute(text("ALTER TABLE _bench_fold ADD COLUMN IF NOT EXISTS cpu float"))
    print(f"{schema}: generating {layout.records:,} rows (resumes)", file=sys.stderr, flush=True)
    generated = sql_store.generate(engine, layout)
    if generated is not None:
        print(f"{schema}: generated in {generated:.0f} s", file=sys.stderr, flush=True)
    if refold:  # measure the fold (again) on the whole store: rollups and records reset
        with engine.begin() as connection:
            for statement in (
                "DELETE FROM prediction_rollups",
                "UPDATE rollup_cursor SET last_id = 0",
                "DELETE FROM _bench_fold",
            ):
                connection.execute(text(statement))
    fold_measured(engine, schema, fold_limit)
    return engine


def fold_measured(engine: Any, schema: str, limit: int | None = None) -> None:
    """Fold the backlog with the real fold (`fold_rollups`, as `fold_pending` and `servewatch
    db fold-rollups` do), recording rows and seconds per slice (resumes); past `limit` rows
    folded in all, fold to the end of the cursor's minute and fill the rest in SQL."""
    import sql_store
    from sqlalchemy import text

    from storage.rollups import FOLD_ROWS, fold_rollups, newest_pending

    newest = newest_pending(engine)
    while newest is not None:
        with engine.connect() as connection:
            done = connection.execute(text("SELECT coalesce(sum(rows), 0) FROM _bench_fold"))
            left = FOLD_SLICE if limit is None else min(FOLD_SLICE, limit - done.scalar())
        if left <= 0:
            break
        rows, seconds, cpu = 0, 0.0, 0.0
        while rows < left:
            began, cpu_began = time.perf_counter(), cpu_seconds()
            folded = fold_rollups(engine, min(FOLD_ROWS, left - rows), up_to=newest)
            seconds += time.perf_counter() - began
            cpu += cpu_seconds() - cpu_began
            if not folded:
                newest = None
                break
            rows += folded
        if rows:
            load1 = os.getloadavg()[0]
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO _bench_fold (rows, seconds, load1, cpu) "
                        "VALUES (:r, :s, :l, :c)"
                    ),
                    {"r": rows, "s": seconds, "l": load1, "c": cpu},
                )
            print(
                f"{schema}: folded {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f}/s, "
                f"{cpu:.1f} CPU s = {rows / cpu:,.0f}/CPU s (load {load1:.1f})",
                file=sys.stderr,
                flush=True,
            )
    if newest is not None:
        fold_to_minute_end(engine)
        print(f"{schema}: filling the rest of the rollups in SQL", file=sys.stderr, flush=True)
        sql_store.fill_rollups(engine)


def fold_to_minute_end(engine: Any) -> None:
    """Fold (the real fold) the rest of the minute the cursor stops in: the SQL fill starts on
    a whole minute, so no rollup row is written by both."""
    from sqlalchemy import text

    from storage.rollups import fold_rollups

    with engine.connect() as connection:
        high = connection.execute(
            text(
                "SELECT max(id) FROM predictions WHERE ts < (SELECT date_trunc('minute', ts) + "
                "interval '1 minute' FROM predictions WHERE id = "
                "(SELECT last_id FROM rollup_cursor WHERE id = 1))"
            )
        ).scalar()
    while high is not None and fold_rollups(engine, 1_000_000, up_to=high):
        pass


def verify_filled(engine: Any, day: datetime) -> tuple[int, list[str]]:
    """Compare two hours of `day`'s stored rollups with what the real fold computes for the
    same rows (`storage.rollups._aggregate`): (rollup rows compared, differences)."""
    import math

    from sqlalchemy import and_, select, text

    from core.timeutil import to_utc
    from storage.rollups import _aggregate, _Rollup
    from storage.schema import ROLLUP_KEY, prediction_rollups, predictions

    start, end = day + timedelta(hours=12), day + timedelta(hours=14)
    p, r = predictions.c, prediction_rollups.c
    with engine.connect() as connection:
        bounds = text("SELECT coalesce(max(id), 0) FROM predictions WHERE ts < :t")
        lo = connection.execute(bounds, {"t": start}).scalar()
        hi = connection.execute(bounds, {"t": end}).scalar()
        computed = _aggregate(connection, and_(p.id > lo, p.id <= hi))
        stored = {
            (to_utc(row["minute"]), *(row[c] for c in ROLLUP_KEY[1:])): _Rollup.of_row(row)
            for row in connection.execute(
                select(prediction_rollups).where(r.minute >= start, r.minute < end)
            ).mappings()
        }
    differences = []
    if computed.keys() != stored.keys():
        differences.append(f"keys: {len(computed)} computed, {len(stored)} stored")
    for key in computed.keys() & stored.keys():
        a, b = computed[key].values(), stored[key].values()
        for name, value in a.items():
            same = (
                math.isclose(value, b[name], rel_tol=1e-9)
                if isinstance(value, float)
                else sorted(map(tuple, value)) == sorted(map(tuple, b[name]))
                if isinstance(value, list)
                else value == b[name]
            )
            if not same:
                differences.append(f"{key} {name}: {value!r} != {b[name]!r}")
    return len(stored), differences


def fold_record(engine: Any) -> dict[str, Any]:
    """The recorded fold of the whole store: rows, seconds, rows/s, slowest slice, loads."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT rows, seconds, load1, cpu FROM _bench_fold")).all()
        rollup_rows = connection.execute(text("SELECT count(*) FROM prediction_rollups")).scalar()
    folded, seconds = sum(r[0] for r in rows), sum(r[1] for r in rows)
    timed = [r for r in rows if r[3] is not None]
    cpu = sum(r[3] for r in timed)
    return {
        "fold_rows_per_cpu_s": sum(r[0] for r in timed) / cpu if cpu else None,
        "folded": folded,
        "fold_s": seconds,
        "fold_rows_per_s": folded / seconds if seconds else 0.0,
        "fold_slowest_rows_per_s": min((r[0] / r[1] for r in rows), default=0.0),
        "fold_load": [
            min((r[2] for r in rows), default=0.0),
            max((r[2] for r in rows), default=0.0),
        ],
        "rollup_rows": rollup_rows,
    }


def timed_monitors(
    engine: Any, window: Any, kind: str, repeat: int, tick: bool = False
) -> tuple[float, list[Any]]:
    """Best wall time of `repeat` runs of all monitors over `window` from `kind`, and the
    (key, status, n) of the results. `tick`: as the scheduler runs them, with the traffic
    monitor's hourly history kept from the previous hour's run (so a run reads one new hour
    of history, not the whole reference week)."""
    from core.config import AppConfig
    from core.timeutil import Window
    from monitors.aggregate_source import aggregate_source
    from monitors.baselines import BaselineStore
    from monitors.runner import run_monitors
    from monitors.traffic import HourlyHistory

    baselines = BaselineStore(engine, registry=None)
    source = aggregate_source(engine, kind)
    history = HourlyHistory(source) if tick else None
    if tick:
        before = Window(window.start - timedelta(hours=1), window.end - timedelta(hours=1))
        run_monitors(
            engine, before, AppConfig(), baselines=baselines, source=source, history=history
        )
    timings, outcome = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        outcome = run_monitors(
            engine, window, AppConfig(), baselines=baselines, source=source, history=history
        )
        timings.append(time.perf_counter() - began)
    assert outcome is not None
    return min(timings), sorted((r.key, r.status, r.n) for r in outcome.results)


def timed_finops(engine: Any, week: str, now: datetime, repeat: int) -> dict[str, float]:
    """Seconds of the weekly FinOps report: the store's reads alone (once), and the whole
    report (reads, charts, files) as `servewatch report finops` writes it (best of `repeat`)."""
    import tempfile

    from core.config import AppConfig
    from core.timeutil import IsoWeek
    from monitors.finops.report import load_figures, write_weekly_report

    began = time.perf_counter()
    load_figures(engine, AppConfig(), IsoWeek.parse(week))
    reads = time.perf_counter() - began
    whole = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            began = time.perf_counter()
            write_weekly_report(engine, AppConfig(), week, Path(out), now=now)
            whole.append(time.perf_counter() - began)
    return {"finops_reads_s": reads, "finops_report_s": min(whole), "finops_first_s": whole[0]}


def run_sql_benchmark(args: argparse.Namespace) -> None:
    """Issue 19's targets on SQL-generated stores: `--records` and its `--compare-records`
    prefix, each folded with the real fold, then monitors, FinOps and Evidently timed."""
    import sql_store

    from core.timeutil import Window

    big = sql_store.Layout(args.records, args.records, args.days)
    small = sql_store.Layout(args.compare_records, args.records, args.days)
    n = args.compare_records
    short = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"
    names = {"small": f"{args.schema}_{short}", "big": args.schema}
    engines = {
        size: prepare_sql_store(
            args.postgres_url,
            names[size],
            layout,
            args.reuse,
            args.fold_limit if size == "big" else None,
            refold=args.refold and size == "small",
        )
        for size, layout in (("small", small), ("big", big))
    }
    loads: dict[str, list[float]] = {}

    def load(what: str) -> None:
        loads[what] = [round(x, 2) for x in os.getloadavg()]

    # The same hour in both stores (the small one is the big one's first rows): the weekend
    # afternoon peak of the first day; and a weekday peak of the last week in the big store.
    start = big.start
    shared = Window(start + timedelta(hours=15), start + timedelta(hours=16))
    weekday = Window(
        sql_store.END - timedelta(days=5, hours=9), sql_store.END - timedelta(days=5, hours=8)
    )
    with engines["small"].connect() as connection:
        from sqlalchemy import text

        last = connection.execute(text("SELECT max(ts) FROM predictions")).scalar()
    whole_small = Window(start, (last + timedelta(minutes=1)).replace(second=0, microsecond=0))
    rows: list[dict[str, Any]] = []
    checks: list[tuple[str, bool]] = []
    parts = set(args.parts.split(","))
    windows = (
        ("one hour (weekend peak, day 1)", "small", shared),
        ("one hour (weekend peak, day 1)", "big", shared),
        ("one hour (weekday peak, day 25)", "big", weekday),
        ("same, scheduler tick (history kept)", "big", weekday),
        (f"whole {args.compare_records:,} store", "small", whole_small),
    )
    for label, size, window in windows if "monitors" in parts else ():
        engine = engines[size]
        load(f"{label} {size}")
        tick = "tick" in label
        rolled, rolled_results = timed_monitors(engine, window, "rollups", args.repeat, tick)
        raw, raw_results = timed_monitors(engine, window, "raw", args.repeat, tick)
        checks.append((f"{label}, {names[size]}: rollups = raw", rolled_results == raw_results))
        with engine.connect() as connection:
            n = connection.execute(
                text("SELECT count(*) FROM predictions WHERE ts >= :a AND ts < :b"),
                {"a": window.start, "b": window.end},
            ).scalar()
        rows.append(
            {
                "what": label,
                "store": names[size],
                "records": big.records if size == "big" else small.records,
                "window_rows": n,
                "rollups_s": rolled,
                "raw_s": raw,
                "load": loads[f"{label} {size}"],
            }
        )
    # The SQL-filled rollups against the real fold's aggregation, and a folded day as a control.
    samples = (("big", sql_store.END - timedelta(days=3)), ("small", start))
    for size, day in samples if "verify" in parts else ():
        compared, differences = verify_filled(engines[size], day)
        name = f"{names[size]} {day:%Y-%m-%d} 12-14h: stored rollups = fold's aggregation"
        checks.append((f"{name} ({compared:,} rollup rows)", not differences))
        for line in differences[:5]:
            print(f"  {line}", file=sys.stderr)
    finops = None
    if "finops" in parts:
        load("finops")
        week_end = sql_store.END
        finops = timed_finops(
            engines["big"], args.finops_week, week_end + timedelta(days=1), args.repeat
        )
        finops["load"] = loads["finops"]
    folds = {size: fold_record(engine) for size, engine in engines.items()}
    for engine in engines.values():
        engine.dispose()
    evidently = None
    if args.evidently_rows and "evidently" in parts:
        load("evidently")
        url = sql_store_url(args.postgres_url, names["small"])
        evidently = in_fresh_process(
            "evidently", url, args.workdir / "pycache", args.evidently_rows
        )
        evidently["load"] = loads["evidently"]
    print_sql_report(rows, checks, finops, folds, evidently, names, args)


def print_sql_report(
    rows: list[dict[str, Any]],
    checks: list[tuple[str, bool]],
    finops: dict[str, Any] | None,
    folds: dict[str, dict[str, Any]],
    evidently: dict[str, Any] | None,
    names: dict[str, str],
    args: argparse.Namespace,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    table = Table(title=f"monitors (all four, all groups), best of {args.repeat}")
    for column in (
        "window",
        "store",
        "predictions",
        "rows in window",
        "rollups s",
        "raw s",
        "load 1/5/15",
    ):
        table.add_column(column, justify="left" if column in ("window", "store") else "right")
    for r in rows:
        table.add_row(
            r["what"],
            r["store"],
            f"{r['records']:,}",
            f"{r['window_rows']:,}",
            f"{r['rollups_s']:.3f}",
            f"{r['raw_s']:.3f}",
            " ".join(map(str, r["load"])),
        )
    console.print(table)
    folded = Table(title="rollup fold (storage.rollups.fold_rollups, whole backlog)")
    for column in (
        "store",
        "rows folded",
        "seconds",
        "rows/s",
        "rows/CPU s",
        "slowest 1M slice rows/s",
        "rollup rows",
        "load 1 min..max",
    ):
        folded.add_column(column, justify="left" if column == "store" else "right")
    for size, f in folds.items():
        folded.add_row(
            names[size],
            f"{f['folded']:,}",
            f"{f['fold_s']:.0f}",
            f"{f['fold_rows_per_s']:,.0f}",
            "-" if f["fold_rows_per_cpu_s"] is None else f"{f['fold_rows_per_cpu_s']:,.0f}",
            f"{f['fold_slowest_rows_per_s']:,.0f}",
            f"{f['rollup_rows']:,}",
            f"{f['fold_load'][0]:.1f}..{f['fold_load'][1]:.1f}",
        )
    console.print(folded)
    lines = [
        f"fold: {folds['big']['fold_rows_per_s']:,.0f} rows/s wall, "
        f"{folds['big']['fold_rows_per_cpu_s'] or 0:,.0f} rows per CPU second (process and "
        f"backend), over {folds['big']['folded']:,} rows; target >= 50,000 records/s",
    ]
    hour = {r["store"]: r["rollups_s"] for r in rows if r["what"].startswith("one hour (weekend")}
    if hour:
        small, big = hour[names["small"]], hour[names["big"]]
        lines.append(
            f"one hour from rollups: {small:.3f} s ({names['small']}), {big:.3f} s "
            f"({names['big']}); target <= 0.5 s; 50M/1M = {big / small:.2f} (target 0.8..1.2)"
        )
    if finops is not None:
        lines.append(
            f"FinOps {args.finops_week} on {names['big']}: "
            f"store reads {finops['finops_reads_s']:.2f} s, whole report "
            f"{finops['finops_report_s']:.2f} s (first {finops['finops_first_s']:.2f} s); "
            f"target <= 5 s; load {' '.join(map(str, finops['load']))}"
        )
    whole = next((r for r in rows if r["what"].startswith("whole")), None)
    if evidently is not None and whole is not None:
        e = evidently
        for source in ("rollups_s", "raw_s"):
            lines.append(
                f"Evidently on the {e['rows']:,} ok rows of {names['small']} "
                f"(read {e['read_s']:.2f} s + per version and tenant "
                f"{e['grouped_compute_s']:.2f} s = {e['grouped_wall_s']:.2f} s; "
                f"one group {e['wall_s']:.2f} s) vs monitors from {source[:-2]} on the same store "
                f"({whole[source]:.3f} s): {e['grouped_wall_s'] / whole[source]:.1f}x same groups, "
                f"{e['wall_s'] / whole[source]:.1f}x one group; target >= 20x"
            )
    lines += [f"check: {name}: {'yes' if ok else 'NO'}" for name, ok in checks]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
    print(
        json.dumps(
            {
                "monitors": rows,
                "finops": finops,
                "folds": folds,
                "evidently": evidently,
                "checks": checks,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
