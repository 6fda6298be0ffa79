"""Alertmanager: amtool accepts the config, routes by severity, and a real one inhibits drift."""

import json
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from alerts.alertmanager import alertmanager_config
from alerts.render import ALERTMANAGER_FILE
from tests.alerts.conftest import tool


@pytest.fixture
def config_file(tmp_path, rendered):
    path = tmp_path / "alertmanager.yml"
    path.write_text(rendered[ALERTMANAGER_FILE])
    return path


def test_amtool_check_config_passes(config_file):
    result = subprocess.run(
        [tool("amtool"), "check-config", str(config_file)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ServewatchServiceDown", "severity=critical"], "pager"),
        (["alertname=ServewatchConfidenceDrift", "severity=warning", "tenant=acme"], "ticket"),
        (["alertname=ServewatchTenantBudgetNearlySpent", "severity=info"], "blackhole"),
    ],
)
def test_routes_by_severity(config_file, labels, receiver):
    result = subprocess.run(
        [tool("amtool"), "config", "routes", "test", f"--config.file={config_file}", *labels],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_groups_by_alertname_model_and_tenant_and_urls_are_configurable(spec):
    config = alertmanager_config(spec, pager_url="http://127.0.0.1:1/p")
    assert config["route"]["group_by"] == ["alertname", "model_name", "tenant"]
    urls = {r["name"]: r.get("webhook_configs", [{}])[0].get("url") for r in config["receivers"]}
    assert urls == {
        "blackhole": None,
        "pager": "http://127.0.0.1:1/p",
        "ticket": spec.alertmanager.ticket_url,
    }
    for receiver in config["receivers"][1:]:
        assert receiver["webhook_configs"][0]["url"].startswith("http://127.0.0.1:")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path, config_file):
    """A real Alertmanager on a free loopback port (no clustering), stopped afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [
            tool("alertmanager", "prometheus-alertmanager"),  # upstream, Debian
            f"--config.file={config_file}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("Alertmanager did not become ready in 20s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _alert(name, **labels):
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **labels},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


def _states(url):
    alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    return {a["labels"]["alertname"]: a["status"] for a in alerts}


def test_drift_alerts_are_muted_while_the_service_is_down(alertmanager):
    drift = _alert("ServewatchConfidenceDrift", severity="warning", tenant="acme", model_name="m")
    budget = _alert("ServewatchTenantBudgetExceeded", severity="warning", tenant="acme")
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[drift, budget], timeout=5).raise_for_status()
    assert _states(alertmanager)["ServewatchConfidenceDrift"]["state"] == "active"

    down = _alert("ServewatchServiceDown", severity="critical", job="servewatch-service")
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[down], timeout=5).raise_for_status()
    states = _states(alertmanager)
    assert states["ServewatchConfidenceDrift"]["state"] == "suppressed"
    assert states["ServewatchConfidenceDrift"]["inhibitedBy"]
    assert states["ServewatchTenantBudgetExceeded"]["state"] == "active"
    assert states["ServewatchServiceDown"]["state"] == "active"


def test_a_page_mutes_the_ticket_of_the_same_slo_and_endpoint(alertmanager):
    common = {"slo": "availability"}
    slow = _alert("ServewatchAvailabilitySlowBurn", severity="warning", endpoint="a", **common)
    other = _alert("ServewatchAvailabilitySlowBurn", severity="warning", endpoint="b", **common)
    fast = _alert("ServewatchAvailabilityFastBurn", severity="critical", endpoint="a", **common)
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[slow, other, fast], timeout=5)
    alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
    by_endpoint = {
        a["labels"]["endpoint"]: a["status"]["state"]
        for a in alerts
        if a["labels"]["alertname"] == "ServewatchAvailabilitySlowBurn"
    }
    assert by_endpoint == {"a": "suppressed", "b": "active"}


def test_committed_config_is_yaml_with_the_generated_mark(rendered):
    text = rendered[ALERTMANAGER_FILE]
    assert text.startswith("# Generated by")
    assert yaml.safe_load(text)["inhibit_rules"]
    json.dumps(yaml.safe_load(text))
