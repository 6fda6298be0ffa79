"""What the no-silence key enumeration and the traffic monitor cost a scheduled run.

On bench_monitors.py's seeded store (a week of predictions, 3 versions x 5 tenants), for the
hour before the store's end: the 168-hour `hourly_counts` query alone (what a scheduler pays
once at start and a `monitor run` pays each time), a confidence-drift plus traffic run with the
scheduler's hourly cache cold and then warm (one new hour), and confidence drift alone with the
warm cache and without a cache (as a `monitor run`). The first run also pays scipy's import, so
read the query line for the cold cost.

    .venv/bin/python bench/bench_traffic_history.py                                # 200k, SQLite
    .venv/bin/python bench/bench_traffic_history.py --size 1000000 --backends sqlite postgresql
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "bench"))

import bench_monitors as seeded  # noqa: E402

from core.config import AppConfig  # noqa: E402
from core.timeutil import Window  # noqa: E402
from monitors.aggregate_source import SqlAggregates  # noqa: E402
from monitors.baselines import BaselineStore  # noqa: E402
from monitors.runner import run_monitors  # noqa: E402
from monitors.traffic import HourlyHistory, history_span  # noqa: E402
from storage.aggregates import hourly_counts  # noqa: E402
from storage.engine import create_store_engine  # noqa: E402


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label:<52} {time.perf_counter() - started:6.2f} s")
    return result


def measure(url: str) -> None:
    engine = create_store_engine(url)
    end = seeded.START + seeded.SPAN
    span = history_span(Window(end - timedelta(hours=1), end), 168)
    frame = timed(
        "hourly_counts over 168 h (SQL)", lambda: hourly_counts(engine, span.start, span.end)
    )
    print(f"  {'key-hours':<52} {len(frame):6d}")
    history = HourlyHistory(SqlAggregates(engine))
    baselines, config = BaselineStore(engine), AppConfig()
    for back, label in ((2, "drift + traffic, cold cache"), (1, "drift + traffic, warm cache")):
        window = Window(end - timedelta(hours=back), end - timedelta(hours=back - 1))
        timed(
            label,
            lambda w=window: run_monitors(
                engine,
                w,
                config,
                monitors=["confidence_drift", "traffic"],
                baselines=baselines,
                history=history,
            ),
        )
    window = Window(end - timedelta(hours=1), end)
    for label, cache in (("drift alone, warm cache", history), ("drift alone, no cache", None)):
        timed(
            label,
            lambda c=cache: run_monitors(
                engine,
                window,
                config,
                monitors=["confidence_drift"],
                baselines=baselines,
                history=c,
            ),
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite"])
    parser.add_argument("--postgres-url", default=seeded.POSTGRES_URL)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    for backend in args.backends:
        url = seeded.store_url(backend, args.size, args.workdir, args.postgres_url)
        loaded = seeded.prepare_store(backend, args.size, url, args.postgres_url)
        print(f"{backend}, {args.size:,} predictions over a week (loaded in {loaded or 0:.0f} s)")
        measure(url)


if __name__ == "__main__":
    main()
