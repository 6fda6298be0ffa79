"""A drift alert end to end: the real monitors exporter → Debian's Prometheus with the generated
rules → Alertmanager with the generated config → `servewatch alert-sink`, all on loopback.

The monitors exporter and the service's request metrics are served from this process (fresh
registries), so the test decides what the drift status is and when it changes; everything after
the scrape is the real thing. Timings are shortened (1 s scrapes, evaluations, `for` and
Alertmanager waits) so a run takes seconds.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from alerts.quality import report_url
from alerts.sink import SINK_DIR, alerts_of, sink_log
from alerts.spec import SPEC_FILE, AlertSpec, parse_spec
from core.catalog import SERVICE_METRICS
from core.config import DEFAULT_PORTS, AppConfig
from core.contracts import ALL
from core.metrics import create_metrics
from monitors.exporter import MonitorExporter
from monitors.results import MonitorResult
from servewatch.stack import (
    RunningStack,
    StackPlan,
    alertmanager_binary,
    choose_ports,
    observability,
    sink_component,
    write_alerting,
)
from tests.conftest import require

MODEL = {"model_name": "ticket_classifier", "model_version": "3"}
MONITOR, METRIC, ALERT = "class_shift", "psi", "ServewatchClassShift"
RUNBOOKS, REPORTS = "http://docs.servewatch.test/runbooks", "http://reports.servewatch.test"


def _fast_spec() -> AlertSpec:
    """The committed spec with every `for` at 1 s and Alertmanager flushing every second."""
    raw = yaml.safe_load(SPEC_FILE.read_text())

    def shorten(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                node[key] = "1s" if key == "for" else value
                shorten(value)
        elif isinstance(node, list):
            for item in node:
                shorten(item)

    shorten(raw)
    raw["alertmanager"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    raw["app_config"] = None
    return parse_spec(raw)


def _result(status: str, value: float | None) -> MonitorResult:
    end = datetime.now(UTC)
    return MonitorResult(
        MONITOR,
        MODEL["model_name"],
        MODEL["model_version"],
        ALL,
        end - timedelta(hours=1),
        end,
        METRIC,
        value,
        0.25,
        status,  # type: ignore[arg-type]
        500,
    )


class Targets:
    """The monitors' gauges (the real exporter) and a healthy service's request metrics."""

    def __init__(self, config: AppConfig) -> None:
        monitors, service = CollectorRegistry(), CollectorRegistry()
        self.exporter = MonitorExporter(monitors, config)
        self.requests = create_metrics(SERVICE_METRICS, service)
        self.servers = [
            start_http_server(0, addr="127.0.0.1", registry=registry)[0]
            for registry in (monitors, service)
        ]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve_requests, daemon=True)
        self.thread.start()

    def ports(self) -> dict[str, int]:
        monitors, service = (server.server_port for server in self.servers)
        return {"servewatch-monitors": monitors, "servewatch-service": service}

    def _serve_requests(self) -> None:
        labels = {"endpoint": "classify_ticket", **MODEL, "tenant": "acme"}
        requests = self.requests["servewatch_requests_total"].labels(**labels, outcome="ok")
        latency = self.requests["servewatch_request_duration_seconds"].labels(**labels)
        while not self.stop.wait(0.1):
            requests.inc(10)
            for _ in range(10):
                latency.observe(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def targets() -> Iterator[Targets]:
    served = Targets(AppConfig())
    yield served
    served.close()


def _wait(predicate: Callable[[], Any], what: str, stack: RunningStack, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        if stack.exited():
            pytest.fail(f"{stack.exited()} exited (logs in {stack.logs})")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (logs in {stack.logs})")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_drift_alert_reaches_the_sink_with_its_links_and_holds_through_thin_data(
    tmp_path: Path, targets: Targets
) -> None:
    require(shutil.which("prometheus") is not None, "prometheus is not installed")
    require(alertmanager_binary() is not None, "alertmanager is not installed")
    config = AppConfig.model_validate(
        {"alerting": {"runbook_base_url": RUNBOOKS, "reports_base_url": REPORTS}}
    )
    # Free ports only: the sink's default URL in the config must follow it to its real port.
    ports = choose_ports(tuple(DEFAULT_PORTS), {})
    alerting = write_alerting(tmp_path, config, ports, _fast_spec())
    components = (
        sink_component(ports["alert_sink"], {"SERVEWATCH_HOME": str(tmp_path)}),
        *observability(
            tmp_path,
            targets.ports(),
            ports,
            alerting / "generated",
            alerting / "alertmanager.yml",
            scrape_interval="1s",
        ),
    )
    stack = RunningStack(StackPlan(components, tmp_path))
    notifications = sink_log(tmp_path)
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"

    def sent(status: str) -> list[dict[str, Any]]:
        return [
            alert
            for alert in alerts_of(notifications.read("ticket"))
            if alert["labels"]["alertname"] == ALERT and alert["status"] == status
        ]

    def firing_in_prometheus() -> list[dict[str, Any]]:
        answer = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return [a for a in answer if a["labels"]["alertname"] == ALERT and a["state"] == "firing"]

    def platform_recorded() -> list[dict[str, Any]]:
        query = "model_version:servewatch_slo_availability_errors:ratio_rate1h >= 0"
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        return list(answer.json()["data"]["result"])

    try:
        stack.start(timeout=60)
        # The platform's recording rules need two scrapes of the request counters first.
        _wait(platform_recorded, "the platform signals to be recorded", stack)
        targets.exporter.publish(MONITOR, [_result("alert", 0.41)])
        [alert] = _wait(lambda: sent("firing"), "the drift alert at the sink", stack)
        labels = {**MODEL, "tenant": ALL, "metric": METRIC}
        assert {k: alert["labels"][k] for k in labels} == labels
        assert alert["labels"]["severity"] == "warning"
        annotations = alert["annotations"]
        assert annotations["runbook_url"] == f"{RUNBOOKS}#servewatchclassshift"
        assert annotations["report_url"] == report_url(REPORTS, MONITOR, labels)
        assert annotations["report_url"].endswith(
            "/class_shift/ticket_classifier/3/%2A/latest.html"
        )
        assert "psi = 0.410" in annotations["description"]
        assert "server errors healthy (within 0.5%)" in annotations["description"]
        assert "p99 latency healthy (within 0.5s)" in annotations["description"]
        assert "too few predictions" not in annotations["description"]

        # Too few predictions: the exporter drops the value; the firing alert holds and says why.
        targets.exporter.publish(MONITOR, [_result("insufficient_data", None)])
        held = _wait(
            lambda: [
                a
                for a in firing_in_prometheus()
                if "too few predictions" in a["annotations"]["description"]
            ],
            "the alert to hold through insufficient data",
            stack,
        )
        assert "psi = 0.410" in held[0]["annotations"]["description"]
        time.sleep(5)  # five evaluations: without the hold it would have resolved by now
        assert firing_in_prometheus()
        assert not sent("resolved")

        # A judged window below the threshold clears it, and the sink hears that too.
        targets.exporter.publish(MONITOR, [_result("ok", 0.02)])
        _wait(lambda: sent("resolved"), "the resolved notification", stack)
    finally:
        stack.stop()
    assert (tmp_path / SINK_DIR).is_dir()
