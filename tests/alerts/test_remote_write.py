"""Remote-write: an edge Prometheus (generated config) scrapes a service and forwards what it
scrapes to a central Prometheus running the remote-write receiver, which evaluates the rules;
both answer the dashboards' and rules' queries with the same values."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from alerts.prometheus_config import SERVICE_JOB, PrometheusSpec, render, write
from core.catalog import SERVICE_METRICS
from core.metrics import create_metrics
from dashboards.cli import DASHBOARDS_DIR
from tests.alerts.conftest import ALERTS_DIR
from tests.support.prometheus import PrometheusServer, wait_for

pytestmark = pytest.mark.timeout(120)
RULES = ALERTS_DIR / "generated" / "servewatch.rules.yaml"
SERVING = DASHBOARDS_DIR / "generated" / "servewatch-serving.json"
MODEL = {"model_name": "ticket_classifier", "model_version": "v1"}
# Grafana's variables as a dashboard viewer with "All" selected would send them.
GRAFANA = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}
AVAILABILITY_5M = "endpoint:servewatch_slo_availability_errors:ratio_rate5m"


class Service:
    """The catalog's service metrics on a loopback port: 3 answers and 1 model error a tick."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.metrics = create_metrics(SERVICE_METRICS, registry)
        self.server = start_http_server(0, addr="127.0.0.1", registry=registry)[0]
        self.target = f"127.0.0.1:{self.server.server_port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self) -> None:
        labels = {"endpoint": "classify_ticket", **MODEL, "tenant": "acme"}
        requests = self.metrics["servewatch_requests_total"]
        latency = self.metrics["servewatch_request_duration_seconds"].labels(**labels)
        while not self.stop.wait(0.1):
            requests.labels(**labels, outcome="ok").inc(3)
            requests.labels(**labels, outcome="model_error").inc(1)
            for seconds in (0.02, 0.05, 0.3, 0.8):
                latency.observe(seconds)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def edge_and_central(tmp_path) -> Iterator[tuple[PrometheusServer, PrometheusServer]]:
    service = Service()
    central_dir, edge_dir = tmp_path / "central", tmp_path / "edge"
    central_dir.mkdir()
    central_config = {"global": {"evaluation_interval": "1s"}, "rule_files": [str(RULES)]}
    (central_dir / "prometheus.yml").write_text(yaml.safe_dump(central_config))
    central = PrometheusServer(
        central_dir / "prometheus.yml", central_dir, ["--web.enable-remote-write-receiver"]
    )
    edge = None
    try:
        central.start()
        spec = PrometheusSpec(
            replicas=(service.target,),
            rule_files=(),
            remote_write=(f"{central.url}/api/v1/write",),
            scrape_interval="1s",
        )
        write(edge_dir, render(spec))
        edge = PrometheusServer(edge_dir / "prometheus.yml", edge_dir).start()
        yield edge, central
    finally:
        if edge is not None:
            edge.stop()
        central.stop()
        service.close()


def dashboard_queries() -> list[str]:
    """The serving dashboard's PromQL, its variables at "All" and Grafana's intervals."""
    exprs = _exprs(json.loads(SERVING.read_text()))
    return [_resolve(expr) for expr in exprs if "servewatch_request" in expr]


def _exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _exprs(value)


def _resolve(expr: str) -> str:
    for variable, value in GRAFANA.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def _values(prometheus: PrometheusServer, expr: str, at: float) -> dict[str, str]:
    return {
        json.dumps(r["metric"], sort_keys=True): r["value"][1]
        for r in prometheus.query(expr, at=at)
    }


def test_the_central_prometheus_answers_like_the_edge_one(edge_and_central):
    edge, central = edge_and_central
    wait_for(lambda: True if len(edge.active_targets(SERVICE_JOB)) == 1 else None, 10, "no target")
    samples = f'count_over_time(servewatch_requests_total{{job="{SERVICE_JOB}",outcome="ok"}}[1m])'
    wait_for(lambda: True if (edge.scalar(samples) or 0) >= 8 else None, 30, "edge scrapes")
    at = time.time() - 1
    # The central one has every sample up to `at` once remote-write delivered them (batches
    # leave at most every 5 s).
    wait_for(
        lambda: True if central.scalar(samples, at=at) == edge.scalar(samples, at=at) else None,
        30,
        f"central lags: {central.scalar(samples, at=at)} vs {edge.scalar(samples, at=at)}",
    )
    queries = dashboard_queries()
    assert len(queries) >= 5
    answered = 0
    for expr in queries:
        on_edge = _values(edge, expr, at)
        assert _values(central, expr, at) == on_edge, expr
        answered += bool(on_edge)
    assert answered >= 5
    # The rules' inputs agree, and the central Prometheus evaluates the rules on what it received.
    rule_inputs = [
        rule["expr"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if rule.get("record") == AVAILABILITY_5M
    ]
    assert _values(central, rule_inputs[0], at) == _values(edge, rule_inputs[0], at)
    recorded = wait_for(
        lambda: central.scalar(f'{AVAILABILITY_5M}{{endpoint="classify_ticket"}}'),
        20,
        "the central prometheus recorded no availability ratio",
    )
    assert recorded == pytest.approx(0.25, abs=0.05)
