"""How much of the worker's CPU time the stored busy time accounts for, and how it is split.

One `servewatch serve` (1 worker, metrics and prediction log on, SQLite, examples/servewatch.yaml)
is loaded in phases: single tickets flat out (closed loop, wrk or an asyncio client, 16
connections); then each endpoint alone and then the demo traffic mix (service.traffic: its
tenants, endpoint mix and bulk sizes), each open-loop at the same `--rate`. For each phase it
reads the worker processes' CPU seconds (psutil) from just before the phase until its rows are
stored, and the busy seconds stored with the phase's rows (`busy_ms`, summed by
storage.aggregates.compute_totals): their ratio is the share of the worker's CPU that cost
attribution accounts for. Per endpoint it prints the CPU per request of the endpoint's own
phase beside the busy time the mix attributed per request at the same rate, which shows how
well each request's own measured work keys the split.

The service charges each one-second interval at the rate of the intervals before it, so a
phase's last interval is charged to the next phase's first requests: the total over all phases
is the figure to read; a single phase is off by about one interval of its duration.

    .venv/bin/python bench/bench_busy.py --duration 15 [--rate 100] [--models-home var/bentoml]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.bench_service import TICKETS, WRK_SCRIPT, parse_wrk, prepare_home  # noqa: E402
from service.traffic import DEMO_TENANTS, TenantProfile, plan_traffic, send_traffic  # noqa: E402
from storage.aggregates import compute_totals  # noqa: E402
from storage.engine import create_store_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.prediction_samples import prediction_count  # noqa: E402
from tests.service.conftest import ServiceServer  # noqa: E402

CONFIG = PROJECT_ROOT / "examples" / "servewatch.yaml"
KEY = "demo-acme-key"  # acme may call every endpoint
QUIET_S = 3.0  # between phases: the worker's intervals close without requests


@dataclass(frozen=True)
class Phase:
    name: str
    requests: int
    cpu_s: float  # the worker processes' CPU over the phase and its drain
    busy_s: float  # stored with the phase's rows
    by_endpoint: dict[str, tuple[int, float]]  # requests, busy seconds

    @property
    def share(self) -> float:
        return self.busy_s / self.cpu_s if self.cpu_s else float("nan")


def worker_cpu_s(server: ServiceServer) -> float:
    """User + system CPU seconds of the server's worker processes (not the arbiter)."""
    assert server.process is not None
    total = 0.0
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def closed_loop(url: str, endpoint: str, payloads: list[str], seconds: float, workdir: Path) -> int:
    """Requests sent by 16 connections, each waiting for its answer (wrk, else asyncio)."""
    if shutil.which("wrk"):
        import subprocess

        script = workdir / f"{endpoint}.lua"
        lua = "{" + ", ".join(json.dumps(p) for p in payloads) + "}"
        script.write_text(WRK_SCRIPT % {"key": KEY, "bodies": lua, "endpoint": endpoint})
        command = ["wrk", "-t1", "-c16", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return parse_wrk(output, seconds).requests
    return asyncio.run(_python_loop(url, endpoint, payloads, seconds))


async def _python_loop(url: str, endpoint: str, payloads: list[str], seconds: float) -> int:
    import httpx

    sent = 0
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    async def connection(client: httpx.AsyncClient, offset: int, stop_at: float) -> None:
        nonlocal sent
        i = offset
        while time.monotonic() < stop_at:
            await client.post(f"/{endpoint}", content=payloads[i % len(payloads)])
            sent += 1
            i += 1

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(connection(client, i, stop_at) for i in range(16)))
    return sent


def open_loop(url: str, tenants: tuple[TenantProfile, ...], rate: float, seconds: float) -> int:
    """Poisson arrivals at `rate` from the demo generator (its tickets, features, bulk sizes)."""
    from service.models.risk_data import risk_features
    from service.models.ticket_corpus import ticket_text

    plan = plan_traffic(
        tenants, rate, seconds, ticket_text=ticket_text, risk_features=risk_features, seed=3
    )
    summary = asyncio.run(send_traffic(plan, url, concurrency=32))
    return summary.answered


def run_phase(name: str, server: ServiceServer, url: str, load: object) -> Phase:
    engine = create_store_engine(url)
    try:
        time.sleep(QUIET_S)
        start, cpu_before = datetime.now(UTC), worker_cpu_s(server)
        sent = load()  # type: ignore[operator]
        wait_stored(engine)
        cpu = worker_cpu_s(server) - cpu_before
        totals = compute_totals(engine, start, datetime.now(UTC) + timedelta(seconds=1))
    finally:
        engine.dispose()
    per_endpoint = totals.groupby("endpoint")[["requests", "busy_ms"]].sum()
    by_endpoint = {
        str(endpoint): (int(row["requests"]), float(row["busy_ms"]) / 1000.0)
        for endpoint, row in per_endpoint.iterrows()
    }
    stored = int(totals["requests"].sum())
    print(f"  {name}: sent {sent}, stored {stored} requests", file=sys.stderr)
    return Phase(name, stored, cpu, float(totals["busy_ms"].sum()) / 1000.0, by_endpoint)


def wait_stored(engine: object, settle_s: float = 1.5, timeout: float = 60.0) -> None:
    """Until the store's row count has not moved for `settle_s`."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = prediction_count(engine)  # type: ignore[arg-type]
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return
        time.sleep(0.25)


def report(phases: list[Phase]) -> None:
    print("| phase | requests | worker CPU s | stored busy s | share | CPU ms/request |")
    print("|---|---:|---:|---:|---:|---:|")
    for p in phases:
        per_request = p.cpu_s / p.requests * 1000 if p.requests else float("nan")
        print(
            f"| {p.name} | {p.requests:,} | {p.cpu_s:.2f} | {p.busy_s:.2f} | "
            f"{p.share * 100:.1f} % | {per_request:.2f} |"
        )
    cpu, busy = sum(p.cpu_s for p in phases), sum(p.busy_s for p in phases)
    print(f"| all phases | {sum(p.requests for p in phases):,} | {cpu:.2f} | {busy:.2f} | "
          f"{busy / cpu * 100:.1f} % | |")  # fmt: skip
    alone = {p.name: p for p in phases}
    mix = alone.get("demo mix")
    if mix is None:
        return
    print("\n| endpoint | alone: CPU ms/request | in the mix: busy ms/request attributed |")
    print("|---|---:|---:|")
    for endpoint, (requests, busy) in sorted(mix.by_endpoint.items()):
        own = alone.get(endpoint)
        cpu_ms = own.cpu_s / own.requests * 1000 if own and own.requests else float("nan")
        print(f"| {endpoint} | {cpu_ms:.2f} | {busy / requests * 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests/s")
    parser.add_argument("--models-home", type=Path, help="BentoML home with built models")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as tmp:
        workdir = Path(tmp)
        models_home = prepare_home(workdir, args.models_home)
        url = f"sqlite:///{workdir / 'store.db'}"
        upgrade(url)
        server = ServiceServer(
            home=workdir / "home", config=CONFIG, models_home=models_home, database_url=url
        )
        server.start()
        try:
            phases = measure(server, url, args, workdir)
        finally:
            server.stop()
    report(phases)


def measure(
    server: ServiceServer, url: str, args: argparse.Namespace, workdir: Path
) -> list[Phase]:
    phases = []
    payloads = [json.dumps({"text": text}) for text in TICKETS]

    def flat_out() -> int:
        return closed_loop(server.url, "classify_ticket", payloads, args.duration, workdir)

    phases.append(run_phase("classify_ticket, flat out", server, url, flat_out))
    caller = max(DEMO_TENANTS, key=lambda tenant: len(tenant.endpoints))  # may call every one
    for endpoint in caller.endpoints:
        alone = (TenantProfile(caller.name, caller.api_key, {endpoint: 1.0}),)

        def load(tenants: tuple[TenantProfile, ...] = alone) -> int:
            return open_loop(server.url, tenants, args.rate, args.duration)

        phases.append(run_phase(endpoint, server, url, load))

    def mix() -> int:
        return open_loop(server.url, DEMO_TENANTS, args.rate, args.duration)

    phases.append(run_phase("demo mix", server, url, mix))
    return phases


if __name__ == "__main__":
    main()
