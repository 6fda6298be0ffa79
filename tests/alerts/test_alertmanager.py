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
from alerts.render import ALERTMANAGER_FILE, render_alertmanager
from core.config import AppConfig
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


def test_groups_by_alertname_model_and_tenant_and_posts_to_the_sink(spec, app_config):
    config = alertmanager_config(spec, app_config.alerting)
    assert config["route"]["group_by"] == ["alertname", "model_name", "tenant"]
    urls = {r["name"]: r.get("webhook_configs", [{}])[0].get("url") for r in config["receivers"]}
    sink = app_config.alerting.alert_sink_url
    assert urls == {"blackhole": None, "pager": f"{sink}/pager", "ticket": f"{sink}/ticket"}


SECRET = "s3cr3t-do-not-print"


@pytest.fixture
def every_kind(tmp_path):
    """An app config with a receiver of every kind, secrets in files, several per severity."""
    secrets = {}
    for name in ("token", "slack_url", "routing_key", "smtp_password"):
        secrets[name] = tmp_path / name
        secrets[name].write_text(f"{SECRET}-{name}\n")
    return AppConfig.model_validate(
        {
            "alerting": {
                "alert_sink_url": "http://127.0.0.1:7001",
                "receivers": {
                    "sink": {"kind": "sink"},
                    "hook": {
                        "kind": "webhook",
                        "url": "https://hooks.acme.test/alerts",
                        "bearer_token_file": str(secrets["token"]),
                    },
                    "oncall": {
                        "kind": "pagerduty",
                        "routing_key_file": str(secrets["routing_key"]),
                    },
                    "chat": {
                        "kind": "slack",
                        "api_url_file": str(secrets["slack_url"]),
                        "channel": "#ml-alerts",
                    },
                    "mail": {
                        "kind": "email",
                        "to": "ml-team@acme.test, sre@acme.test",
                        "from": "servewatch@acme.test",
                        "smarthost": "smtp.acme.test:587",
                        "auth_username": "servewatch",
                        "auth_password_file": str(secrets["smtp_password"]),
                    },
                },
                "routes": {
                    "critical": ["oncall", "sink"],
                    "warning": ["hook", "mail"],
                    "info": ["chat"],
                },
            }
        }
    )


def test_every_receiver_kind_passes_amtool_and_routes_by_severity(tmp_path, spec, every_kind):
    text = render_alertmanager(spec, every_kind)
    assert SECRET not in text
    path = tmp_path / "every.yml"
    path.write_text(text)
    checked = subprocess.run(
        [tool("amtool"), "check-config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " - 6 receivers" in checked.stdout
    for severity, receivers in (
        ("critical", "oncall,sink"),
        ("warning", "hook,mail"),
        ("info", "chat"),
        ("none", "blackhole"),
    ):
        routed = subprocess.run(
            [
                tool("amtool"),
                "config",
                "routes",
                "test",
                f"--config.file={path}",
                f"severity={severity}",
            ],
            capture_output=True,
            text=True,
        )
        assert routed.returncode == 0, routed.stdout + routed.stderr
        assert routed.stdout.strip() == receivers, severity
    config = yaml.safe_load(text)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["sink"]["webhook_configs"][0]["url"] == "http://127.0.0.1:7001/sink"
    authorization = receivers["hook"]["webhook_configs"][0]["http_config"]["authorization"]
    assert authorization["credentials_file"].endswith("/token")


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


def test_drift_and_traffic_alerts_are_muted_while_the_service_is_down(alertmanager):
    drift = _alert("ServewatchConfidenceDrift", severity="warning", tenant="acme", model_name="m")
    traffic = _alert("ServewatchTrafficStopped", severity="warning", tenant="acme", model_name="m")
    budget = _alert("ServewatchTenantBudgetExceeded", severity="warning", tenant="acme")
    posted = httpx.post(f"{alertmanager}/api/v2/alerts", json=[drift, traffic, budget], timeout=5)
    posted.raise_for_status()
    assert _states(alertmanager)["ServewatchConfidenceDrift"]["state"] == "active"

    down = _alert("ServewatchServiceDown", severity="critical", job="servewatch-service")
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[down], timeout=5).raise_for_status()
    states = _states(alertmanager)
    for muted in ("ServewatchConfidenceDrift", "ServewatchTrafficStopped"):
        assert states[muted]["state"] == "suppressed", muted
        assert states[muted]["inhibitedBy"], muted
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


def test_failing_runs_mute_the_staleness_of_the_same_monitors_results(alertmanager):
    alerts = [
        _alert("ServewatchMonitorStale", severity="warning", monitor="class_shift"),
        _alert("ServewatchMonitorResultsStale", severity="warning", monitor="class_shift"),
        _alert("ServewatchMonitorResultsStale", severity="warning", monitor="cost"),
    ]
    httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()
    found = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
    results = {
        a["labels"]["monitor"]: a["status"]["state"]
        for a in found
        if a["labels"]["alertname"] == "ServewatchMonitorResultsStale"
    }
    assert results == {"class_shift": "suppressed", "cost": "active"}


def test_an_unreachable_model_service_mutes_its_call_errors_and_latency(alertmanager):
    def hop(name, service, severity="warning"):
        return _alert(name, severity=severity, service=service, model_name="m")

    alerts = [
        hop("ServewatchModelServiceErrors", "ticket"),
        hop("ServewatchModelServiceSlow", "ticket"),
        hop("ServewatchModelServiceErrors", "risk"),
        _alert("ServewatchModelServiceDown", severity="critical", service="ticket"),
    ]
    httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()
    found = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
    states = {
        (a["labels"]["alertname"], a["labels"]["service"]): a["status"]["state"] for a in found
    }
    assert states == {
        ("ServewatchModelServiceErrors", "ticket"): "suppressed",
        ("ServewatchModelServiceSlow", "ticket"): "suppressed",
        ("ServewatchModelServiceErrors", "risk"): "active",
        ("ServewatchModelServiceDown", "ticket"): "active",
    }


def test_committed_config_is_yaml_with_the_generated_mark(rendered):
    text = rendered[ALERTMANAGER_FILE]
    assert text.startswith("# Generated by")
    assert yaml.safe_load(text)["inhibit_rules"]
    json.dumps(yaml.safe_load(text))
