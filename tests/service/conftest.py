"""Service-level fixtures: models built once per session, and real servers on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.config import hash_api_key
from tests.conftest import POSTGRES_URL, require
from tests.support.scratch import scratch_schema
from tests.support.tcp_proxy import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYS = {"acme": "acme-test-key", "globex": "globex-test-key"}


def auth(tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


def write_config(path: Path, **overrides: Any) -> Path:
    """A test config: two tenants (acme: everything, globex: tickets only), small limits."""
    config: dict[str, Any] = {
        "tenants": {
            "acme": {"api_key_sha256": [hash_api_key(KEYS["acme"])], "endpoints": ["*"]},
            "globex": {
                "api_key_sha256": [hash_api_key(KEYS["globex"])],
                "endpoints": ["classify_ticket", "classify_tickets"],
            },
        },
        "limits": {
            "max_payload_bytes": 8192,
            "max_ticket_chars": 2000,
            "max_bulk_items": 16,
            "request_timeout_s": 2,
        },
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


class ServiceServer:
    """`servewatch serve` in a subprocess on a free loopback port; stopped by the test."""

    def __init__(
        self,
        *,
        home: Path,
        config: Path,
        models_home: Path,
        database_url: str,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        topology: str = "single",
        model_workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.topology = topology
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.log_path = home / "server.log"
        self._command = [
            sys.executable, "-m", "service.serve_cli",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(workers), "--config", str(config),
            "--topology", topology, "--model-workers", str(model_workers),
        ]  # fmt: skip
        self._env = {
            **os.environ,
            "SERVEWATCH_HOME": str(home),
            "SERVEWATCH_MODELS_HOME": str(models_home),
            "SERVEWATCH_DATABASE_URL": database_url,
            "SERVEWATCH_USE_CUDA": "false",
            "SERVEWATCH_LOG_FLUSH_INTERVAL_S": "0.2",
            "BENTOML_DO_NOT_TRACK": "true",
            **(env or {}),
        }
        self._env.pop("BENTOML_HOME", None)
        self._env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, ready: bool = True, timeout: float = 90.0) -> ServiceServer:
        """Spawn and wait for /readyz 200 (ready) or for any answer from /livez."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._command,
            cwd=PROJECT_ROOT,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_text()[-4000:]}")
            try:
                answer = httpx.get(f"{self.url}/{'readyz' if ready else 'livez'}", timeout=2)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                return self
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"server not {'ready' if ready else 'up'}:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful: workers flush their prediction logs), then SIGKILL if needed."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)

    @property
    def checks(self) -> list[str]:
        """The readiness checks /readyz names, in order (split: one per model service too)."""
        checks = ["models", "provider", "sample", "store"]
        if self.topology == "split":
            checks += ["model_service:ticket", "model_service:risk"]
        return checks

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 10), **kwargs)


@pytest.fixture(scope="session")
def built_models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BentoML home holding ticket_classifier and risk_scorer, built once per session."""
    from service.models.build import build_all

    home = tmp_path_factory.mktemp("models") / "bentoml"
    build_all(home=home)  # an explicit home: BentoML's process-wide one is left alone
    return home


def fresh_postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL schema of its own (dropped afterwards)."""
    with scratch_schema(POSTGRES_URL, prefix="svc") as url:
        yield url


@pytest.fixture(scope="session")
def service_database_url(postgres_available: bool) -> Iterator[str]:
    require(postgres_available, "PostgreSQL is not reachable")
    yield from fresh_postgres_url()


TOPOLOGIES = ("single", "split")


@pytest.fixture(scope="session", params=TOPOLOGIES)
def service_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    built_models_home: Path,
    service_database_url: str,
) -> Iterator[ServiceServer]:
    """The service with 2 workers against PostgreSQL, fault injection on, for HTTP tests; in
    each topology (split: two model services of 2 workers each), one server at a time. A test
    of one topology only says so with `pytest.mark.parametrize(..., indirect=True)`."""
    topology = request.param
    home = tmp_path_factory.mktemp(f"service-{topology}")
    config = write_config(
        home / "servewatch.yaml",
        routing={
            "classify_ticket": {"default": {"model": "ticket_classifier"}},
            "classify_tickets": {"default": {"model": "ticket_classifier"}},
            "predict_risk": {
                "default": {"model": "risk_scorer"},
                "rules": [{"region": "eu", "model": "risk_scorer", "version": "latest"}],
            },
        },
        redaction={"store_raw_inputs": True},
        # Bulk items one per batch: a queue of 64 items that concurrent bulk requests overflow.
        batching={"classify_tickets": {"max_batch_size": 1, "max_latency_ms": 1}},
    )
    server = ServiceServer(
        home=home,
        config=config,
        models_home=built_models_home,
        database_url=service_database_url,
        workers=2,
        env={"SERVEWATCH_FAULT_INJECTION": "true"},
        topology=topology,
        model_workers=2,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registered_models(built_models_home: Path) -> dict[str, Any]:
    """The newest registered version of each model in the built store."""
    from service.models.registry import list_models

    newest: dict[str, Any] = {}
    for model in list_models(home=built_models_home):  # newest first per name
        newest.setdefault(model.name, model)
    return newest
