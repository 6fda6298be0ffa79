"""`servewatch monitor schedule` as a process: it serves the monitors' gauges on /metrics."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.contracts import MONITOR_NAMES
from core.reports import report_url
from core.timeutil import aligned_end
from storage.engine import create_store_engine
from storage.migrate import upgrade
from tests.monitors import traffic

ROOT = Path(__file__).resolve().parents[2]
EVERY = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def store(tmp_path):
    """A SQLite store holding an hour of traffic that ends at the latest cadence point."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    end = datetime.fromtimestamp(aligned_end(time.time(), EVERY), UTC)
    start = end - timedelta(hours=1)
    traffic.register_baseline(engine)
    traffic.load(
        engine,
        traffic.records("acme", 600, start, seed=1),
        traffic.records("globex", 600, start, drifted=True, seed=2),
    )
    engine.dispose()
    return url


def test_schedule_serves_gauges_reports_and_runbooks_and_stops_on_sigterm(store, tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text(
        "monitors:\n  schedules:\n"
        + "".join(
            f"    {m}: {{every_seconds: {EVERY}, window_seconds: 3600}}\n" for m in MONITOR_NAMES
        )
    )
    port = _free_port()
    env = {**os.environ, "SERVEWATCH_HOME": str(tmp_path / "home")}
    env.pop("SERVEWATCH_DATABASE_URL", None)
    command = [
        sys.executable, "-c", "from monitors.cli import monitor_app; monitor_app()",
        "schedule", "--host", "127.0.0.1", "--port", str(port),
        "--database-url", store, "--config", str(config),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wanted = 'servewatch_monitor_status{metric="psi",model_name="ticket_classifier"'
    last_run = 'servewatch_monitor_runs_total{monitor="traffic",outcome="success"}'
    base = f"http://127.0.0.1:{port}"
    report = report_url(f"{base}/reports", "class_shift", traffic.MODEL, "v1", "globex")
    body, page, runbooks = "", None, None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                body = httpx.get(f"{base}/metrics", timeout=2).text
                page = httpx.get(report, timeout=2)
                runbooks = httpx.get(f"{base}/runbooks", timeout=2)
            except httpx.TransportError:
                body = ""
            # Monitors run in catalog order, traffic last; each counts itself after its gauges
            # (and its drift reports).
            if wanted in body and last_run in body and page is not None and page.is_success:
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert wanted in body, stderr
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    psi = {"monitor": "confidence_drift", "metric": "psi", "model_name": traffic.MODEL}
    psi |= {"model_version": "v1"}
    for tenant, status in (("globex", 2.0), ("acme", 0.0)):
        labels = tuple(sorted({**psi, "tenant": tenant}.items()))
        assert samples[("servewatch_monitor_status", labels)] == status
    runs = tuple(sorted({"monitor": "cost", "outcome": "success"}.items()))
    assert samples[("servewatch_monitor_runs_total", runs)] == 1.0
    schedule = (("monitor", "traffic"),)
    assert samples[("servewatch_monitor_schedule_seconds", schedule)] == EVERY
    assert samples[("servewatch_monitor_last_run_timestamp_seconds", schedule)] > 0
    assert page is not None
    assert page.status_code == 200, stderr
    assert "Drift report: ticket_classifier v1, tenant globex" in page.text
    assert runbooks is not None
    assert '<h2 id="servewatchclassshift">' in runbooks.text
    assert process.returncode == 0, stderr
