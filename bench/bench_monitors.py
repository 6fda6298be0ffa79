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

    .venv/bin/python bench/bench_monitors.py                      # 1M and 10M, both backends
    .venv/bin/python bench/bench_monitors.py --sizes 100000 --backends sqlite \\
        --evidently-rows 100000
    .venv/bin/python bench/bench_monitors.py --rollups --sizes 1000000 --backends postgresql \\
        --span-hours 2
"""

from __future__ import annotations

import argparse
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


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
