"""prometheus.yml with file-based discovery of the replicas: validated, checked by promtool."""

import json
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from alerts.prometheus_config import (
    CONFIG_FILE,
    DEFAULT_RULE_FILES,
    MONITORS_JOB,
    SERVICE_JOB,
    PrometheusSpec,
    PrometheusSpecError,
    render,
    targets_file,
    write,
)
from servewatch.cli import app
from tests.alerts.conftest import tool

REPLICAS = ("10.0.0.1:3000", "10.0.0.2:3000", "replica-3.internal:3000", "[::1]:3001")
SPEC = PrometheusSpec(
    replicas=REPLICAS,
    monitors=("monitors-a:9101", "monitors-b:9101"),
    alertmanagers=("alertmanager:9093",),
    remote_write=("http://central:9090/api/v1/write",),
)


def _check_config(directory):
    return subprocess.run(
        [tool("promtool"), "check", "config", CONFIG_FILE],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_job_discovers_its_targets_from_a_file(tmp_path):
    files = render(SPEC)
    config = yaml.safe_load(files[CONFIG_FILE])
    discovered = {
        job["job_name"]: job["file_sd_configs"][0]["files"] for job in config["scrape_configs"]
    }
    assert discovered == {job: [targets_file(job)] for job in (SERVICE_JOB, MONITORS_JOB)}
    assert json.loads(files[targets_file(SERVICE_JOB)]) == [{"targets": list(REPLICAS)}]
    assert config["remote_write"] == [{"url": "http://central:9090/api/v1/write"}]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_promtool_accepts_the_generated_config(tmp_path):
    write(tmp_path, render(SPEC))
    result = _check_config(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_monitors_or_remote_write_only_the_replicas_are_scraped(tmp_path):
    files = render(PrometheusSpec(replicas=REPLICAS[:1]))
    config = yaml.safe_load(files[CONFIG_FILE])
    assert [job["job_name"] for job in config["scrape_configs"]] == [SERVICE_JOB]
    assert "remote_write" not in config
    assert "alerting" not in config
    assert set(files) == {CONFIG_FILE, targets_file(SERVICE_JOB)}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PrometheusSpec(replicas=()), "no service replica"),
        (PrometheusSpec(replicas=("host",)), "replica 'host' is not HOST:PORT"),
        (PrometheusSpec(replicas=("host:0",)), "is not HOST:PORT"),
        (PrometheusSpec(replicas=("host:70000",)), "is not HOST:PORT"),
        (PrometheusSpec(replicas=("a b:3000",)), "is not HOST:PORT"),
        (PrometheusSpec(replicas=("h:1", "h:1")), "replica listed twice: h:1"),
        (PrometheusSpec(replicas=("h:1",), monitors=("m",)), "monitor scheduler 'm'"),
        (PrometheusSpec(replicas=("h:1",), remote_write=("central:9090",)), "remote-write URL"),
        (PrometheusSpec(replicas=("h:1",), scrape_interval="15"), "scrape interval '15'"),
    ],
)
def test_a_bad_spec_is_refused_with_the_reason(spec, message):
    with pytest.raises(PrometheusSpecError, match=message.replace("[", r"\[")):
        render(spec)


def test_the_command_writes_both_files_and_rewrites_the_targets(tmp_path):
    runner = CliRunner()
    out = tmp_path / "prometheus"
    args = ["deploy", "prometheus", "--out-dir", str(out), "--monitors", "m:9101"]
    first = runner.invoke(app, [*args, "--replica", "a:3000", "--replica", "b:3000"])
    assert first.exit_code == 0, first.output
    assert json.loads((out / targets_file(SERVICE_JOB)).read_text())[0]["targets"] == [
        "a:3000",
        "b:3000",
    ]
    assert _check_config(out).returncode == 0
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["rule_files"] == list(DEFAULT_RULE_FILES)
    again = runner.invoke(app, [*args, "--replica", "a:3000", "--no-rules"])
    assert again.exit_code == 0, again.output
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["rule_files"] == []
    assert json.loads((out / targets_file(SERVICE_JOB)).read_text())[0]["targets"] == ["a:3000"]
    assert sorted(p.name for p in out.rglob("*")) == sorted(
        ["prometheus.yml", "targets", "servewatch-service.json", "servewatch-monitors.json"]
    )  # no temporary file left behind


def test_the_command_refuses_a_bad_replica_with_exit_2(tmp_path):
    result = CliRunner().invoke(
        app, ["deploy", "prometheus", "--out-dir", str(tmp_path), "--replica", "nope"]
    )
    assert result.exit_code == 2
    assert "replica 'nope' is not HOST:PORT" in result.output
    assert not (tmp_path / CONFIG_FILE).exists()
