"""The local stack's plan: stable ports unless taken, and alerting generated for the real ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import yaml

from core.config import DEFAULT_PORTS, AppConfig
from servewatch.stack import choose_ports, local_alerting, plan_stack, port_taken


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_stable_ports_unless_taken(listening):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert port_taken(listening)
    assert not port_taken(free)
    chosen = choose_ports(("a", "b", "c", "d"), {"a": free, "b": listening, "c": free})
    assert chosen["a"] == free
    assert chosen["b"] != listening  # taken: replaced
    assert chosen["c"] != free  # already given to a
    assert len(set(chosen.values())) == 4


def test_links_on_default_loopback_ports_follow_the_components():
    ports = {**DEFAULT_PORTS, "monitors": 40001, "alert_sink": 40002}
    moved = local_alerting(AppConfig().alerting, ports)
    assert moved.runbook_base_url == "http://127.0.0.1:40001/runbooks"
    assert moved.reports_base_url == "http://127.0.0.1:40001/reports"
    assert moved.alert_sink_url == "http://127.0.0.1:40002"
    elsewhere = AppConfig.model_validate(
        {"alerting": {"runbook_base_url": "https://docs.acme.test/runbooks"}}
    ).alerting
    assert local_alerting(elsewhere, ports).runbook_base_url == "https://docs.acme.test/runbooks"


def test_the_plan_runs_the_sink_and_generates_alerting_for_its_ports(tmp_path, listening):
    plan = plan_stack(
        tmp_path,
        config_file=None,
        database_url=None,
        traffic_rate=1,
        traffic_duration_s=0,
        with_prometheus=True,
        preferred_ports={"monitors": listening},
    )
    urls = {c.name: c.url for c in plan.components}
    sink = next(c for c in plan.components if c.name == "alert_sink")
    port = urls["alert_sink"].rsplit(":", 1)[1]
    assert sink.command[-5:] == ("alert-sink", "--host", "127.0.0.1", "--port", port)
    assert sink.env["SERVEWATCH_HOME"] == str(tmp_path)
    assert f"127.0.0.1:{listening}" not in urls["monitors"]
    alertmanager = yaml.safe_load((tmp_path / "alerts" / "alertmanager.yml").read_text())
    hooks = {
        r["name"]: r["webhook_configs"][0]["url"]
        for r in alertmanager["receivers"]
        if "webhook_configs" in r
    }
    assert hooks == {
        "pager": f"{urls['alert_sink']}/pager",
        "ticket": f"{urls['alert_sink']}/ticket",
    }
    rules = (tmp_path / "alerts" / "generated" / "servewatch.rules.yaml").read_text()
    assert f"runbook_url: {urls['monitors']}/runbooks#servewatchclassshift" in rules
    prometheus = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == [str(tmp_path / "alerts" / "generated" / "*.rules.yaml")]
    jobs = {c["job_name"]: c["static_configs"][0]["targets"] for c in prometheus["scrape_configs"]}
    assert jobs == {
        "servewatch-service": [urls["service"].removeprefix("http://")],
        "servewatch-monitors": [urls["monitors"].removeprefix("http://")],
    }
