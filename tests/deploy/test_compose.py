"""compose.yaml is checked as a file: no Docker engine runs here."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parents[2]
SCHEMA = ROOT / "tests" / "schemas" / "compose" / "compose-spec.json"
REQUIRED = {
    "postgres",
    "service",
    "monitors",
    "alert-sink",
    "prometheus",
    "alertmanager",
    "grafana",
    "traffic",
}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_validates_against_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose))
    assert not errors, [e.message for e in errors]


def test_has_the_stack_services_with_healthchecks(compose):
    services = compose["services"]
    assert set(services) >= REQUIRED
    assert services["traffic"]["profiles"] == ["traffic"]
    for name in REQUIRED - {"traffic"}:
        assert "healthcheck" in services[name], name


def test_depends_on_uses_conditions_on_declared_services(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"].startswith("service_"), (name, dependency)


def test_every_mounted_path_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


def test_no_secrets_in_the_file():
    text = (ROOT / "compose.yaml").read_text()
    for match in re.finditer(r"(PASSWORD|SECRET|TOKEN)[A-Z_]*:\s*(\S+)", text):
        assert match.group(2).startswith("${"), match.group(0)


def test_prometheus_scrapes_both_and_loads_generated_rules():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"servewatch-service", "servewatch-monitors"}
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yaml"]


def test_alerts_reach_the_sink_and_link_to_the_monitors_process(compose):
    """The generated Alertmanager config posts to the sink's loopback address, which in compose
    is the sink's own (it shares Alertmanager's network namespace); the alerts' runbook and
    report links name the port the monitors process publishes."""
    from core.config import DEFAULT_PORTS, load_app_config

    services = compose["services"]
    alerting = load_app_config(ROOT / "examples" / "servewatch.yaml").alerting
    sink_port = str(DEFAULT_PORTS["alert_sink"])
    assert alerting.alert_sink_url == f"http://127.0.0.1:{sink_port}"
    assert services["alert-sink"]["network_mode"] == "service:alertmanager"
    assert services["alert-sink"]["command"][-1] == sink_port
    assert f"{sink_port}:{sink_port}" in services["alertmanager"]["ports"]
    alertmanager = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text())
    urls = [c["url"] for r in alertmanager["receivers"] for c in r.get("webhook_configs", [])]
    assert urls
    assert all(url.startswith(alerting.alert_sink_url) for url in urls)
    monitors_port = str(DEFAULT_PORTS["monitors"])
    assert f"{monitors_port}:{monitors_port}" in services["monitors"]["ports"]
    assert services["monitors"]["command"][-1] == monitors_port
    for link in (alerting.runbook_base_url, alerting.reports_base_url):
        assert link.startswith(f"http://127.0.0.1:{monitors_port}/")
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]
    }
    assert targets["servewatch-monitors"] == [f"monitors:{monitors_port}"]


def test_the_service_runs_a_built_release_and_nothing_trains_at_start(compose):
    """The service's image is a release's (models and pinned configuration inside); no
    container builds or trains models when it starts."""
    services = compose["services"]
    service = services["service"]
    assert "build" not in service
    assert service["image"].startswith("${SERVEWATCH_RELEASE_IMAGE:?")
    assert "command" not in service  # BentoML's own entrypoint serves the Bento
    assert "SERVEWATCH_CONFIG_FILE" not in service["environment"]  # the release's own config
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    home = service["environment"]["SERVEWATCH_HOME"]
    assert f"service-data:{home}" in service["volumes"]
    template = (ROOT / bentofile["docker"]["dockerfile_template"]).read_text()
    assert f"mkdir -p {home}" in template
    for name, spec in services.items():
        command = " ".join(spec.get("command", []))
        assert "models build" not in command, name
