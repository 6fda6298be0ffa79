"""A real Prometheus (the installed binary) on a free loopback port, started and stopped by a
test, and queried through its HTTP API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conftest import require
from tests.support.tcp_proxy import free_port

T = TypeVar("T")


class PrometheusServer:
    """`prometheus --config.file=...` with its own TSDB directory and log file."""

    def __init__(self, config_file: Path, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        binary = shutil.which("prometheus")
        require(binary is not None, "prometheus is not installed")
        assert binary is not None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self._command = [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> PrometheusServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(lambda: self._ready() or None, timeout, f"prometheus not ready: {self.log()}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.process.returncode}: {self.log()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector of `expr` now, or at the Unix time `at`."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=5)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """The single value of `expr` (None while it has no sample)."""
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None

    def active_targets(self, job: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=5)
        targets: list[dict[str, Any]] = answer.json()["data"]["activeTargets"]
        return [t for t in targets if t["labels"].get("job") == job]


def wait_for(probe: Callable[[], T | None], timeout: float, why: str, every: float = 0.25) -> T:
    """The first value of `probe` that is not None, polled until `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(why)
        time.sleep(every)
