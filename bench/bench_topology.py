"""Single against split topology: throughput and p50/p99 per route, by workers, load and mix.

For each topology and worker count, one `servewatch serve` on loopback (single: `--workers W`;
split: `--topology split --workers W --model-workers W`, W workers for the gateway and for each
model service; split-bulk: the same with the bulk route in a model service of its own), with
metrics and the prediction log on, then closed-loop load for `--duration` seconds at each
concurrency and mix: `interactive` shares the connections between POST /classify_ticket and
POST /predict_risk; `mixed` gives a quarter of them to bulk POST /classify_tickets
(`--bulk-items` tickets each). One generator per route, all at once (wrk -t1, or the asyncio
client where wrk is missing). Time is bounded: each load runs `--duration` seconds after a
2-second warm-up per server, and the plan's length is printed before it starts.

    .venv/bin/python bench/bench_topology.py --duration 10 --workers 1,2,4 --concurrency 16,64 \
        --topologies single,split --mixes interactive,mixed --models-home var/bentoml
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.bench_service import (  # noqa: E402
    LoadResult,
    Server,
    free_port,
    prepare_home,
    run_python_load,
    run_wrk,
    temporary_store,
    write_config,
)

# split-bulk: split, with the bulk route in a model service of its own.
TOPOLOGIES = ("single", "split", "split-bulk")
# Share of the connections each route gets, per mix.
MIXES: dict[str, dict[str, float]] = {
    "interactive": {"classify_ticket": 0.5, "predict_risk": 0.5},
    "mixed": {"classify_ticket": 0.375, "predict_risk": 0.375, "classify_tickets": 0.25},
}
WARM_UP_S = 2.0
START_S = 20.0  # about what a server takes to start here, for the plan's estimate
T = TypeVar("T")


@dataclass(frozen=True)
class Point:
    """One measured configuration: a server's topology and workers, the load's size and mix."""

    topology: str
    workers: int
    concurrency: int
    mix: str


@dataclass(frozen=True)
class RouteResult:
    point: Point
    route: str
    connections: int
    load: LoadResult
    cpu_s: float = 0.0  # the server's CPU (every process) over the whole point, on each route


def listed(
    cast: Callable[[str], T], allowed: Iterable[T] | None = None
) -> Callable[[str], tuple[T, ...]]:
    """An argparse type for comma-separated values (`1,2,4`), each cast and checked."""
    choices = tuple(allowed) if allowed is not None else None

    def parse(text: str) -> tuple[T, ...]:
        try:
            values = tuple(cast(part.strip()) for part in text.split(",") if part.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        if choices is not None and (bad := [v for v in values if v not in choices]):
            raise argparse.ArgumentTypeError(f"{bad} not among {list(choices)}")
        return values

    return parse


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive whole number")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per point")
    parser.add_argument(
        "--workers", type=listed(positive), default=(1, 2, 4), help="per service, e.g. 1,2,4"
    )
    parser.add_argument(
        "--concurrency", type=listed(positive), default=(16, 64), help="connections, e.g. 16,64"
    )
    parser.add_argument(
        "--topologies",
        type=listed(str, TOPOLOGIES),
        default=TOPOLOGIES[:2],
        help="single,split[,split-bulk: the bulk route in a model service of its own]",
    )
    parser.add_argument(
        "--mixes", type=listed(str, MIXES), default=tuple(MIXES), help="interactive,mixed"
    )
    parser.add_argument("--bulk-items", type=positive, default=32, help="tickets per bulk call")
    parser.add_argument("--database-url", help="prediction store (default: SQLite in a tmp dir)")
    parser.add_argument("--models-home", type=Path, help="BentoML home with built models")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    if args.duration <= 0:
        parser.error("--duration must be above 0")
    too_few = [c for c in args.concurrency if c < max(len(MIXES[m]) for m in args.mixes)]
    if too_few:
        parser.error(f"--concurrency {too_few}: each route of a mix needs a connection")
    return args


def connections_per_route(mix: str, concurrency: int) -> dict[str, int]:
    """`concurrency` connections split by the mix's shares (largest remainder), one at least."""
    shares = MIXES[mix]
    exact = {route: share * concurrency for route, share in shares.items()}
    given = {route: max(1, int(value)) for route, value in exact.items()}
    by_remainder = sorted(shares, key=lambda r: (given[r] - exact[r], r))
    for route in by_remainder[: max(0, concurrency - sum(given.values()))]:
        given[route] += 1
    return given


def plan(args: argparse.Namespace) -> list[Point]:
    """Every point, grouped by server (topology, workers) so each server starts once; the
    topologies of one worker count back to back, so that what else loads the machine drifts
    least between the two sides of a comparison."""
    return [
        Point(topology, workers, concurrency, mix)
        for workers in args.workers
        for topology in args.topologies
        for concurrency in args.concurrency
        for mix in args.mixes
    ]


def estimated_seconds(points: Sequence[Point], duration: float) -> float:
    servers = {(p.topology, p.workers) for p in points}
    return len(servers) * (START_S + WARM_UP_S) + len(points) * (duration + 1)


def serve_args(topology: str, workers: int) -> list[str]:
    """The `servewatch serve` options of a topology beyond `--workers` (none for single, which
    also runs where the command has no --topology)."""
    if topology == "single":
        return []
    return ["--topology", "split", "--model-workers", str(workers)]


def topology_env(topology: str) -> dict[str, str]:
    """What the topology sets in the server's environment beyond the command's options."""
    return {"SERVEWATCH_BULK_MODEL_SERVICE": str(topology == "split-bulk").lower()}


# -- results ---------------------------------------------------------------------------------

COLUMNS = (
    "topology", "workers", "conc.", "mix", "route", "conns", "req/s", "p50 ms", "p99 ms",
    "errors", "CPU us/req",
)  # fmt: skip


def rows(results: Sequence[RouteResult]) -> list[tuple[str, ...]]:
    """Table rows: one per route, then the point's total (all routes, server CPU per request)."""
    out: list[tuple[str, ...]] = []
    points = list(dict.fromkeys(r.point for r in results))
    for point in points:
        mine = [r for r in results if r.point == point]
        head = (point.topology, str(point.workers), str(point.concurrency), point.mix)
        for r in mine:
            load = r.load
            out.append(
                (*head, r.route, str(r.connections), f"{load.rps:.1f}", f"{load.p50_ms:.1f}",
                 f"{load.p99_ms:.1f}", str(load.errors), "")
            )  # fmt: skip
        requests = sum(r.load.requests for r in mine)
        total = sum(r.load.rps for r in mine)
        errors = sum(r.load.errors for r in mine)
        # The server's CPU (all its processes) per answered request of the point, all routes.
        cpu_us = 1e6 * mine[0].cpu_s / max(requests, 1)
        out.append(
            (*head, "all", str(point.concurrency), f"{total:.1f}", "", "", str(errors),
             f"{cpu_us:.0f}")
        )  # fmt: skip
    return out


def results_table(results: Sequence[RouteResult], title: str = "") -> Table:
    table = Table(title=title or None)
    for column in COLUMNS:
        table.add_column(
            column, justify="left" if column in ("topology", "mix", "route") else "right"
        )
    for row in rows(results):
        table.add_row(*row, style="bold" if row[4] == "all" else None)
    return table


SHORT = {"classify_ticket": "ticket", "predict_risk": "risk", "classify_tickets": "bulk"}


def markdown_table(results: Sequence[RouteResult]) -> str:
    """One line per point (for docs/benchmarks.md): total throughput, each route's p50 / p99,
    errors and the server's CPU per request."""
    header = [
        "topology", "workers", "conc.", "mix", "req/s",
        *(f"{short} p50 / p99 ms" for short in SHORT.values()), "errors", "CPU us/req",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for point in dict.fromkeys(r.point for r in results):
        mine = {r.route: r for r in results if r.point == point}
        latencies = [
            f"{mine[route].load.p50_ms:.0f} / {mine[route].load.p99_ms:.0f}"
            if route in mine
            else ""
            for route in SHORT
        ]
        requests = sum(r.load.requests for r in mine.values())
        cpu_us = 1e6 * next(iter(mine.values())).cpu_s / max(requests, 1)
        cells = [
            point.topology, str(point.workers), str(point.concurrency), point.mix,
            f"{sum(r.load.rps for r in mine.values()):.0f}", *latencies,
            str(sum(r.load.errors for r in mine.values())), f"{cpu_us:.0f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the run ---------------------------------------------------------------------------------


def measure_point(
    server: Server, point: Point, args: argparse.Namespace, use_wrk: bool, workdir: Path
) -> list[RouteResult]:
    """Every route of the point's mix loaded at once; the server's CPU over the whole point."""
    conns = connections_per_route(point.mix, point.concurrency)
    return [
        RouteResult(point, route, conns[route], result, cpu_s)
        for route, result, cpu_s in _load_routes(
            server, conns, args.duration, args, use_wrk, workdir
        )
    ]


def _load_routes(
    server: Server,
    conns: dict[str, int],
    duration: float,
    args: argparse.Namespace,
    use_wrk: bool,
    workdir: Path,
) -> list[tuple[str, LoadResult, float]]:
    def load(route: str) -> LoadResult:
        scripts = workdir / route
        scripts.mkdir(parents=True, exist_ok=True)
        if use_wrk:
            return run_wrk(
                server.url, route, duration, conns[route], scripts, bulk_items=args.bulk_items
            )
        return run_python_load(server.url, route, duration, conns[route], args.bulk_items)

    cpu_before = server.cpu_seconds()
    with ThreadPoolExecutor(max_workers=len(conns)) as pool:
        futures = {route: pool.submit(load, route) for route in conns}
        loaded = {route: future.result() for route, future in futures.items()}
    cpu_s = server.cpu_seconds() - cpu_before
    return [(route, result, cpu_s) for route, result in loaded.items()]


def run(args: argparse.Namespace, workdir: Path, models_home: Path, database_url: str) -> None:
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    points = plan(args)
    # Wide enough for every column when piped (rich assumes 80 columns off a terminal).
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(
        f"{len(points)} points, about {estimated_seconds(points, args.duration) / 60:.1f} min; "
        f"load: {'wrk -t1 per route' if use_wrk else 'asyncio client per route'}"
    )
    config = write_config(workdir / "servewatch.yaml")
    results: list[RouteResult] = []
    servers = list(dict.fromkeys((p.topology, p.workers) for p in points))
    for topology, workers in servers:
        name = f"{topology}-w{workers}"
        home = workdir / name
        home.mkdir()
        env = {**server_env(home, models_home, database_url), **topology_env(topology)}
        server = Server(
            name, free_port(), env, config, home / "server.log",
            workers=workers, extra_args=serve_args(topology, workers),
        )  # fmt: skip
        try:
            server.wait_ready()
            warm = {route: 2 for route in MIXES["mixed"]}
            _load_routes(server, warm, WARM_UP_S, args, use_wrk, workdir / name)
            for point in (p for p in points if (p.topology, p.workers) == (topology, workers)):
                measured = measure_point(server, point, args, use_wrk, workdir / name)
                results += measured
                console.print(results_table(measured))
        finally:
            server.stop()
    title = (
        f"{args.duration:g} s per point, bulk calls of {args.bulk_items} tickets, closed loop "
        f"on loopback ({'wrk -t1' if use_wrk else 'asyncio client'} per route)"
    )
    console.print(results_table(results, title))
    if args.markdown:
        print(markdown_table(results))


def server_env(home: Path, models_home: Path, database_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SERVEWATCH_HOME": str(home),
        "SERVEWATCH_MODELS_HOME": str(models_home),
        "SERVEWATCH_DATABASE_URL": database_url,
        "SERVEWATCH_USE_CUDA": "false",
    }
    env.pop("BENTOML_HOME", None)
    return env


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp:
        workdir = Path(tmp)
        models_home = prepare_home(workdir, args.models_home)
        database_url = args.database_url or f"sqlite:///{workdir / 'store.db'}"
        with temporary_store(database_url) as store_url:
            run(args, workdir, models_home, store_url)


if __name__ == "__main__":
    main()
