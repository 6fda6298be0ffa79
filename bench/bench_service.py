"""Cost of instrumentation: the service with metrics and prediction log vs. the same without.

Both variants run side by side (two servers, same models, same config, one worker each) under
the same closed-loop load (wrk, or an asyncio client in its own process when wrk is missing).
By default (with wrk and two CPUs) both servers share CPU 0 and both generators CPU 1, loaded at
the same time: the servers then share that CPU's speed at every instant, which on a VM drifts
by up to 30 % (`--schedule shared`; without wrk or a second CPU, `together`: at the same time,
unpinned). `--schedule alternate` loads them in turns instead (rounds A-B / B-A). Targets at 16
connections: throughput ratio >= 0.95 and p99 latency ratio <= 1.10 (instrumented / bare).
`--baseline bentoml-defaults` compares with BentoML's own default instrumentation instead (its
request metrics and access log on, servewatch's off): what a user saves by switching.

    .venv/bin/python bench/bench_service.py --duration 10 --rounds 9
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from core.config import hash_api_key  # noqa: E402

API_KEY = "bench-key"
TICKETS = (
    "I was charged twice for my subscription this month, please refund the duplicate payment.",
    "The app crashes every time I open the settings page on Android 14.",
    "I cannot log in to my account, the password reset link has expired.",
    "My parcel was supposed to arrive on Monday but tracking shows no update since last week.",
    "Hello, do you have a discount for students? Thanks!",
    "Invoice #4411 lists the wrong VAT number for our company.",
    "Two-factor codes never arrive by SMS, I am locked out.",
    "The package arrived damaged and the box was open.",
)
TARGET_THROUGHPUT_RATIO = 0.95
TARGET_P99_RATIO = 1.10


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_s: float = 0.0  # CPU time of the server's processes during the load
    thread_cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)  # by thread name

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / max(self.requests, 1)


class Server:
    """One `servewatch serve` variant in its own process group."""

    def __init__(
        self,
        name: str,
        port: int,
        env: dict[str, str],
        config: Path,
        log: Path,
        *,
        workers: int = 1,
        extra_args: Sequence[str] = (),
        root: Path = PROJECT_ROOT,
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "service.serve_cli", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--config", str(config),
            *extra_args,
        ]  # fmt: skip
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its workers so far."""
        import psutil

        total = 0.0
        root = psutil.Process(self.process.pid)
        for process in (root, *root.children(recursive=True)):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def thread_cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of the supervisor, the workers' main threads (the event loop, where
        requests run) and their other threads (inference pool, prediction-log writer)."""
        import psutil

        root = psutil.Process(self.process.pid)
        totals = {"supervisor": sum(root.cpu_times()[:2]), "worker main": 0.0, "worker other": 0.0}
        for worker in root.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                for thread in worker.threads():
                    part = "worker main" if thread.id == worker.pid else "worker other"
                    totals[part] += thread.user_time + thread.system_time
        return totals

    def pin(self, cpu: int) -> None:
        """Move every thread of the server and its workers onto one CPU."""
        import psutil

        root = psutil.Process(self.process.pid)
        for process in (root, *root.children(recursive=True)):
            for thread in process.threads():  # affinity is per thread on Linux
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(thread.id, {cpu})

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- load generators ------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local bodies = %(bodies)s
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "/%(endpoint)s", nil, bodies[(i %% #bodies) + 1])
end
"""


def bodies_for(endpoint: str, bulk_items: int = 4) -> list[str]:
    """Request bodies for `endpoint`, cycled through by the load generators."""
    if endpoint == "classify_tickets":
        return [
            json.dumps({"tickets": [TICKETS[(i + j) % len(TICKETS)] for j in range(bulk_items)]})
            for i in (0, 4)
        ]
    if endpoint == "predict_risk":
        from service.models.risk_data import risk_features

        rng = random.Random(7)
        return [json.dumps({"features": risk_features(rng)}) for _ in range(16)]
    return [json.dumps({"text": text}) for text in TICKETS]


def run_wrk(
    url: str,
    endpoint: str,
    duration: float,
    connections: int,
    workdir: Path,
    cpu: int | None = None,
    bulk_items: int = 4,
) -> LoadResult:
    lua = "{" + ", ".join(json.dumps(b) for b in bodies_for(endpoint, bulk_items)) + "}"
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT % {"key": API_KEY, "bodies": lua, "endpoint": endpoint})
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output, duration)


def parse_wrk(output: str, duration: float) -> LoadResult:
    """Requests, non-2xx answers and latency percentiles from `wrk --latency` output."""
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*?timeout (\d+)", output)
    percentiles = {
        int(p): _ms(value, unit)
        for p, value, unit in re.findall(r"\s(\d+)%\s+([\d.]+)(us|ms|s)\b", output)
    }
    non_2xx = int(errors.group(1)) if errors else 0
    timeouts = int(socket_errors.group(1)) if socket_errors else 0
    return LoadResult(
        requests=requests,
        errors=non_2xx + timeouts,
        seconds=duration,
        p50_ms=percentiles[50],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
    )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_python_load(
    url: str, endpoint: str, duration: float, connections: int, bulk_items: int = 4
) -> LoadResult:
    """Closed-loop asyncio client in a separate process (fallback when wrk is missing)."""
    queue: multiprocessing.Queue[Any] = multiprocessing.Queue()
    process = multiprocessing.Process(
        target=_python_load_main, args=(url, endpoint, duration, connections, queue, bulk_items)
    )
    process.start()
    latencies, errors = queue.get(timeout=duration + 60)
    process.join(timeout=10)
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=duration,
        p50_ms=_percentile(latencies, 0.50),
        p90_ms=_percentile(latencies, 0.90),
        p99_ms=_percentile(latencies, 0.99),
    )


def _percentile(sorted_ms: list[float], q: float) -> float:
    return (
        sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))] if sorted_ms else float("nan")
    )


def _python_load_main(
    url: str, endpoint: str, duration: float, connections: int, queue: Any, bulk_items: int = 4
) -> None:
    latencies: list[float] = []
    errors = 0
    bodies = bodies_for(endpoint, bulk_items)

    async def worker(client: httpx.AsyncClient, offset: int, stop_at: float) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            answer = await client.post(f"/{endpoint}", content=bodies[i % len(bodies)])
            latencies.append((time.perf_counter() - start) * 1000)
            errors += answer.status_code != 200
            i += 1

    async def main() -> None:
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
            stop_at = time.perf_counter() + duration
            await asyncio.gather(*(worker(client, i, stop_at) for i in range(connections)))

    asyncio.run(main())
    queue.put((latencies, errors))


# -- the run -------------------------------------------------------------------------------


def prepare_home(workdir: Path, models_home: Path | None) -> Path:
    """A models home holding both models: the given one, or one built here."""
    if models_home is not None:
        return models_home.resolve()
    from service.models.build import build_all

    home = workdir / "bentoml"
    print("building models into", home, flush=True)
    build_all(home=home)
    return home


def write_config(path: Path) -> Path:
    config = {"tenants": {"bench": {"api_key_sha256": [hash_api_key(API_KEY)]}}}
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--endpoint", default="classify_ticket")
    parser.add_argument("--database-url", help="store of the instrumented variant (default SQLite)")
    parser.add_argument("--models-home", type=Path, help="BentoML home with built models")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--instrument",
        choices=("all", "metrics", "log", "none"),
        default="all",
        help="what the instrumented variant switches on (to price one part; none = A/A)",
    )
    parser.add_argument(
        "--baseline",
        choices=("bare", "bentoml-defaults"),
        default="bare",
        help="the variant compared with: `bare` (no instrumentation at all) or `bentoml-defaults` "
        "(BentoML's own request metrics and access log on, as a plain BentoML service has them)",
    )
    parser.add_argument(
        "--schedule",
        choices=("auto", "together", "shared", "pinned", "alternate"),
        default="auto",
        help="`together`: load both variants at once; `shared`: at once with both servers on "
        "CPU 0 and both wrk on CPU 1 (the steadiest); `pinned`: each variant and its wrk on a "
        "CPU of its own, swapped every round; `alternate`: in turns; `auto` (default): shared "
        "where wrk and two CPUs are at hand, else together",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE[,VAR=VALUE]",
        help="one more instrumented server, with these environment variables set, loaded with "
        "the others and reported against the bare one (to compare two settings or builds in "
        "the same run; repeatable); BENCH_PROJECT_ROOT=DIR runs the checkout in DIR",
    )
    args = parser.parse_args()
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    can_pin = use_wrk and len(os.sched_getaffinity(0)) >= 2
    if args.schedule == "auto":
        args.schedule = "shared" if can_pin else "together"
    if args.schedule in ("pinned", "shared") and not can_pin:
        parser.error(f"--schedule {args.schedule} needs wrk and two CPUs")

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        workdir = Path(tmp)
        models_home = prepare_home(workdir, args.models_home)
        config = write_config(workdir / "servewatch.yaml")
        database_url = args.database_url or f"sqlite:///{workdir / 'store.db'}"
        with temporary_store(database_url) as store_url:
            run(args, use_wrk, workdir, models_home, config, store_url)


@contextlib.contextmanager
def temporary_store(url: str) -> Iterator[str]:
    """A migrated store for the run: PostgreSQL gets a schema of its own, dropped afterwards."""

    from storage.engine import is_sqlite
    from storage.migrate import upgrade
    from tests.support.scratch import scratch_schema

    if is_sqlite(url):
        upgrade(url)
        yield url
        return
    with scratch_schema(url, prefix="bench") as scoped_url:
        yield scoped_url


def run(
    args: argparse.Namespace,
    use_wrk: bool,
    workdir: Path,
    models_home: Path,
    config: Path,
    database_url: str,
) -> None:
    """Start both variants, load them, report."""
    base_env = {**os.environ, "SERVEWATCH_MODELS_HOME": str(models_home)}
    base_env["SERVEWATCH_USE_CUDA"] = "false"
    base_env.pop("BENTOML_HOME", None)
    variants = {
        "instrumented": {
            "SERVEWATCH_METRICS_ENABLED": str(args.instrument in ("all", "metrics")).lower(),
            "SERVEWATCH_PREDICTION_LOG_ENABLED": str(args.instrument in ("all", "log")).lower(),
        },
        "bare": {
            "SERVEWATCH_METRICS_ENABLED": "false",
            "SERVEWATCH_PREDICTION_LOG_ENABLED": "false",
            "SERVEWATCH_BENTOML_INSTRUMENTATION": str(args.baseline == "bentoml-defaults").lower(),
        },
    }
    for spec in args.variant:
        name, extra = parse_variant(spec)
        variants[name] = {**variants["instrumented"], **extra}
    servers = {}
    for name, flags in variants.items():
        home = workdir / name
        home.mkdir()
        env = {
            **base_env,
            **flags,
            "SERVEWATCH_HOME": str(home),
            "SERVEWATCH_DATABASE_URL": database_url,
        }
        # A variant may run another checkout of the project (BENCH_PROJECT_ROOT, say a
        # `git worktree` of the commit before a change), so that both builds share each round.
        root = Path(env.pop("BENCH_PROJECT_ROOT", PROJECT_ROOT))
        servers[name] = Server(name, free_port(), env, config, home / "server.log", root=root)
    try:
        for server in servers.values():
            server.wait_ready()
        results = measure(servers, args, use_wrk, workdir)
        report(results, args, use_wrk, database_url, servers["instrumented"])
    finally:
        for server in servers.values():
            server.stop()


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """`NAME:VAR=VALUE,VAR=VALUE` as a variant's name and its extra environment."""
    name, _, assignments = spec.partition(":")
    extra = dict(a.split("=", 1) for a in assignments.split(",") if "=" in a)
    if not name or name in ("instrumented", "bare") or not extra:
        raise SystemExit(f"--variant {spec!r}: expected NAME:VAR=VALUE[,VAR=VALUE]")
    return name, extra


def pin_for_round(
    servers: dict[str, Server], schedule: str, round_index: int
) -> dict[str, int | None]:
    """Pin the servers for one round of a concurrent schedule; the CPU each one's load runs on."""
    if schedule == "pinned":  # swapping CPUs every round cancels their differences
        cpus: dict[str, int | None] = {n: (i + round_index) % 2 for i, n in enumerate(servers)}
        for name, server in servers.items():
            server.pin(cpus[name] or 0)
        return cpus
    if schedule == "shared":  # both servers on CPU 0, both wrk on CPU 1
        for server in servers.values():
            server.pin(0)
        return dict.fromkeys(servers, 1)
    return dict.fromkeys(servers)


def measure(
    servers: dict[str, Server], args: argparse.Namespace, use_wrk: bool, workdir: Path
) -> dict[str, list[LoadResult]]:
    def load(server: Server, duration: float, cpu: int | None = None) -> LoadResult:
        scripts = workdir / server.name
        scripts.mkdir(exist_ok=True)
        cpu_before, threads_before = server.cpu_seconds(), server.thread_cpu_seconds()
        if use_wrk:
            result = run_wrk(server.url, args.endpoint, duration, args.connections, scripts, cpu)
        else:
            result = run_python_load(server.url, args.endpoint, duration, args.connections)
        threads = {
            name: seconds - threads_before.get(name, 0.0)
            for name, seconds in server.thread_cpu_seconds().items()
        }
        return dataclasses.replace(
            result, cpu_s=server.cpu_seconds() - cpu_before, thread_cpu_s=threads
        )

    for server in servers.values():  # warm-up: sessions, batchers, connection pools
        load(server, 2.0)
    results: dict[str, list[LoadResult]] = {name: [] for name in servers}
    order = list(servers)
    for round_index in range(args.rounds):
        if args.schedule in ("together", "pinned", "shared"):
            # Both under load at once: whatever else runs on the machine slows both alike.
            cpus = pin_for_round(servers, args.schedule, round_index)
            with ThreadPoolExecutor(max_workers=len(servers)) as pool:
                futures = {
                    n: pool.submit(load, s, args.duration, cpus[n]) for n, s in servers.items()
                }
                round_results = {n: f.result() for n, f in futures.items()}
        else:
            names = order if round_index % 2 == 0 else list(reversed(order))
            round_results = {n: load(servers[n], args.duration) for n in names}
        for name, result in round_results.items():
            results[name].append(result)
            print(
                f"round {round_index + 1} {name:<13} {result.rps:8.1f} req/s  "
                f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                f"CPU {result.cpu_us_per_request:6.0f} us/req  errors {result.errors}",
                flush=True,
            )
    return results


def report(
    results: dict[str, list[LoadResult]],
    args: argparse.Namespace,
    use_wrk: bool,
    database_url: str,
    instrumented: Server,
) -> None:
    summary = {
        name: {
            "rps": statistics.median(r.rps for r in rounds),
            "p50": statistics.median(r.p50_ms for r in rounds),
            "p90": statistics.median(r.p90_ms for r in rounds),
            "p99": statistics.median(r.p99_ms for r in rounds),
            "cpu": statistics.median(r.cpu_us_per_request for r in rounds),
            "errors": sum(r.errors for r in rounds),
            "requests": sum(r.requests for r in rounds),
        }
        for name, rounds in results.items()
    }
    generator = "wrk -t1" if use_wrk else "asyncio/httpx client (own process)"
    print()
    print(
        f"POST /{args.endpoint}, {args.connections} connections per variant, {args.rounds} rounds"
        f" x {args.duration:g} s ({args.schedule}), 1 worker each, load: {generator}; medians;"
        f" instrumented variant has {args.instrument} on; baseline: {args.baseline}"
    )
    print(
        f"{'variant':<14}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}"
        f"{'CPU us/req':>12}{'errors':>8}"
    )
    for name, s in summary.items():
        print(
            f"{name:<14}{s['rps']:>10.1f}{s['p50']:>10.2f}{s['p90']:>10.2f}{s['p99']:>10.2f}"
            f"{s['cpu']:>12.0f}{s['errors']:>8}"
        )
    print_thread_cpu(results)
    schedule = args.schedule
    for name in list(results)[2:]:  # the --variant servers, each against the bare one
        pairs = list(zip(results[name], results["bare"], strict=True))
        ratios = {
            what: median_ratio([getattr(i, what) / getattr(b, what) for i, b in pairs], schedule)
            for what in ("rps", "p99_ms", "cpu_us_per_request")
        }
        print(
            f"{name} / bare: throughput {ratios['rps']:.3f}, p99 {ratios['p99_ms']:.3f}, "
            f"CPU {ratios['cpu_us_per_request']:.3f}"
        )
    pairs = list(zip(results["instrumented"], results["bare"], strict=True))
    throughput = median_ratio([i.rps / b.rps for i, b in pairs], args.schedule)
    p99 = median_ratio([i.p99_ms / b.p99_ms for i, b in pairs], args.schedule)
    print()
    verdict = "PASS" if throughput >= TARGET_THROUGHPUT_RATIO else "FAIL"
    print(
        f"throughput ratio (instrumented / bare, median of rounds): {throughput:.3f}  "
        f"target >= {TARGET_THROUGHPUT_RATIO}  {verdict}"
    )
    print(
        f"p99 latency ratio (instrumented / bare, median of rounds): {p99:.3f}  "
        f"target <= {TARGET_P99_RATIO}  "
        f"{'PASS' if p99 <= TARGET_P99_RATIO else 'FAIL'}"
    )
    cpu_ratios = [i.cpu_us_per_request / b.cpu_us_per_request for i, b in pairs]
    cpu = median_ratio(cpu_ratios, args.schedule)
    print(f"server CPU per request ratio (instrumented / bare, median of rounds): {cpu:.3f}")
    if args.instrument != "all" or args.variant:  # the row check: one log, one request counter
        return
    rows = stored_rows(database_url, instrumented)
    print(
        f"prediction rows stored by the instrumented variant: {rows} "
        f"(answered requests incl. warm-up: see the server's servewatch_requests_total)"
    )


def print_thread_cpu(results: dict[str, list[LoadResult]]) -> None:
    """Median CPU per request of each thread, to see which part the instrumentation costs."""
    for name, rounds in results.items():
        threads = sorted({t for r in rounds for t in r.thread_cpu_s})
        per_thread = {
            t: statistics.median(1e6 * r.thread_cpu_s.get(t, 0.0) / r.requests for r in rounds)
            for t in threads
        }
        shown = "  ".join(f"{t} {us:.0f}" for t, us in per_thread.items() if us >= 0.5)
        print(f"{name:<14}CPU us/req by thread: {shown}")


def median_ratio(ratios: list[float], schedule: str) -> float:
    """Median of per-round ratios (the variants ran at the same time, so each round is a fair
    pair). Pinned rounds swap CPUs, and the two vCPUs of a VM can differ by 30 % in speed
    (their hyperthread siblings belong to other guests): there each pair of rounds counts once,
    as the geometric mean of its two ratios, so that each variant had each CPU once."""
    if schedule != "pinned" or len(ratios) < 2:
        return statistics.median(ratios)
    swapped = zip(ratios[0::2], ratios[1::2], strict=False)
    return statistics.median(math.sqrt(a * b) for a, b in swapped)


def stored_rows(database_url: str, instrumented: Server, timeout: float = 15) -> int:
    """Rows in the store once the instrumented variant's log has caught up (or timeout)."""
    from sqlalchemy import func, select

    from storage.engine import create_store_engine
    from storage.schema import predictions

    metrics = httpx.get(f"{instrumented.url}/metrics", timeout=5).text
    answered = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("servewatch_requests_total{")
    )
    engine = create_store_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(func.count()).select_from(predictions)
                ).scalar_one()
            if rows >= answered or time.monotonic() > deadline:
                print(f"answered requests per /metrics: {answered:.0f}")
                return int(rows)
            time.sleep(0.5)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
