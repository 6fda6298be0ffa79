"""End to end through the real parts: PostgreSQL, the service, the monitors scheduler, Debian's
Prometheus (scraping both, with the generated rules) and Alertmanager (read through its API)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from alerts.spec import AlertSpec, parse_spec
from servewatch.stack import RunningStack, alertmanager_binary, plan_stack
from service.models.risk_data import risk_features
from service.models.ticket_corpus import ticket_text
from service.traffic import DEMO_TENANTS, Scenario, TenantProfile, plan_traffic, send_traffic
from storage.engine import create_store_engine
from storage.schema import predictions
from tests.conftest import require
from tests.service.conftest import fresh_postgres_url

ROOT = Path(__file__).parents[2]
# Ticket traffic only: one request is one prediction row, so rows can be counted exactly.
TENANTS = tuple(TenantProfile(t.name, t.api_key, {"classify_ticket": 1.0}) for t in DEMO_TENANTS)
SHIFTED = "acme"
DRIFT_ALERTS = {"ServewatchClassShift", "ServewatchConfidenceDrift"}


@pytest.fixture
def stack_database_url(postgres_available: bool) -> Iterator[str]:
    require(postgres_available, "PostgreSQL is not reachable")
    yield from fresh_postgres_url()


def _fast_config(path: Path) -> Path:
    """The example config with monitors every 3 s over the trailing 60 s."""
    config = yaml.safe_load((ROOT / "examples" / "servewatch.yaml").read_text())
    for tenant in config["tenants"].values():
        tenant["endpoints"] = ["*"]
    schedule = {"every_seconds": 3, "window_seconds": 60}
    config["monitors"]["schedules"] = {m: dict(schedule) for m in config["monitors"]["schedules"]}
    config["monitors"]["min_predictions"] = 40
    path.write_text(yaml.safe_dump(config))
    return path


def _fast_spec() -> AlertSpec:
    """The real alerting spec with every `for:` shortened to 5 s."""
    spec = yaml.safe_load((ROOT / "alerts" / "spec.yaml").read_text())
    _shorten(spec)
    return parse_spec(spec, "spec.yaml, shortened")


def _shorten(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "for":
                node[key] = "5s"
            else:
                _shorten(value)
    elif isinstance(node, list):
        for item in node:
            _shorten(item)


def _alerts(alertmanager: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"}, timeout=5)
    answer.raise_for_status()
    return answer.json()


def _firing(alerts: list[dict[str, Any]], name: str, **labels: str) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == name
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def _wait_for(predicate, timeout: float, what: str, stack: RunningStack) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        if stack.exited():
            pytest.fail(f"stack component exited: {stack.exited()} (logs in {stack.logs})")
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what} (logs in {stack.logs})")


def _check_the_sink_got_it_with_working_links(urls: dict[str, str], stack: RunningStack) -> None:
    """The alert reached the built-in receiver; its runbook and report links answer."""

    def at_sink() -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{urls['alert_sink']}/notifications", params={"receiver": "ticket"}, timeout=5
        )
        alerts = [alert for n in answer.json() for alert in n["payload"]["alerts"]]
        return _firing(alerts, "ServewatchClassShift", tenant=SHIFTED)

    alert = _wait_for(at_sink, 120, "ServewatchClassShift at the alert sink", stack)[0]
    runbook = alert["annotations"]["runbook_url"]
    assert runbook == f"{urls['monitors']}/runbooks#servewatchclassshift"
    assert 'id="servewatchclassshift"' in httpx.get(runbook, timeout=5).text
    report = alert["annotations"]["report_url"]
    assert report.startswith(f"{urls['monitors']}/reports/class_shift/ticket_classifier/")

    def report_served() -> bool:
        return httpx.get(report, timeout=5).status_code == 200

    _wait_for(report_served, 60, f"the drift report at {report}", stack)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_class_shift_and_error_burst_fire_real_alerts(
    tmp_path: Path, built_models_home: Path, stack_database_url: str
) -> None:
    for binary in ("prometheus", "promtool"):
        require(shutil.which(binary) is not None, f"{binary} is not installed")
    require(alertmanager_binary() is not None, "alertmanager is not installed")
    config = _fast_config(tmp_path / "servewatch.yaml")
    plan = plan_stack(
        tmp_path / "stack",
        config_file=config,
        database_url=stack_database_url,
        traffic_rate=0,
        traffic_duration_s=0,
        alert_spec=_fast_spec(),
        scrape_interval="1s",
        with_prometheus=True,
        preferred_ports={},  # free ports: other stacks may run on this machine
        extra_env={
            "SERVEWATCH_MODELS_HOME": str(built_models_home),
            "SERVEWATCH_FAULT_INJECTION": "true",
            "SERVEWATCH_USE_CUDA": "false",
            "SERVEWATCH_LOG_FLUSH_INTERVAL_S": "0.2",
        },
    )
    urls = {c.name: c.url for c in plan.components}
    stack = RunningStack(plan)
    try:
        stack.start(timeout=180)
        scenarios = [
            Scenario("class_shift", tenant=SHIFTED, target_class="shipping", intensity=1.0),
            Scenario("error_burst", start_s=20, duration_s=30, intensity=0.5),
        ]
        requests = plan_traffic(
            TENANTS,
            rate=25,
            duration_s=75,
            ticket_text=ticket_text,
            risk_features=risk_features,
            scenarios=scenarios,
            seed=11,
        )
        summary = asyncio.run(send_traffic(requests, urls["service"], concurrency=16))
        assert summary.transport_errors == 0
        assert summary.by_status[500] > 0
        assert summary.by_status[200] > 0

        def class_shift_fired() -> list[dict[str, Any]]:
            return _firing(
                _alerts(urls["alertmanager"]),
                "ServewatchClassShift",
                tenant=SHIFTED,
                model_name="ticket_classifier",
            )

        def burn_fired() -> list[dict[str, Any]]:
            alerts = _alerts(urls["alertmanager"])
            return _firing(alerts, "ServewatchAvailabilityFastBurn")

        _wait_for(class_shift_fired, 120, "ServewatchClassShift for acme", stack)
        _check_the_sink_got_it_with_working_links(urls, stack)
        burn = _wait_for(burn_fired, 120, "the availability burn-rate alert", stack)
        assert all(a["labels"]["severity"] == "critical" for a in burn)
        for alert in _alerts(urls["alertmanager"]):
            if alert["labels"]["alertname"] in DRIFT_ALERTS:
                assert alert["labels"].get("tenant") in (SHIFTED, "*"), alert["labels"]
    finally:
        stack.stop()
    engine = create_store_engine(stack_database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(predictions)).scalar_one()
    finally:
        engine.dispose()
    assert rows == summary.answered
