import sys
from pathlib import Path

import pytest

from core.config import ConfigError
from service.serve_cli import PROJECT_ROOT, serve_command, serve_environment


def test_command_runs_bentoml_on_the_service_with_its_workers():
    command = serve_command(host="127.0.0.1", port=3111, workers=3)
    assert command[:5] == [sys.executable, "-m", "bentoml", "serve", "service.app:Servewatch"]
    assert command[command.index("--port") + 1] == "3111"
    assert command[command.index("--working-dir") + 1] == str(PROJECT_ROOT)
    assert command[command.index("--arg") + 1] == "workers=3"


def test_environment_makes_paths_absolute_and_points_bentoml_home(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVEWATCH_MODELS_HOME", raising=False)
    monkeypatch.setenv("SERVEWATCH_HOME", "var")
    config = tmp_path / "servewatch.yaml"
    config.write_text("limits: {max_payload_bytes: 1024}\n")
    env = serve_environment(
        config=Path("servewatch.yaml"), metrics=False, prediction_log=True, instance="h-3000"
    )
    assert env["SERVEWATCH_HOME"] == str(tmp_path / "var")
    assert env["SERVEWATCH_CONFIG_FILE"] == str(config)
    assert env["SERVEWATCH_MODELS_HOME"] == str(tmp_path / "var" / "bentoml")
    # BentoML's own home (its metrics directory) is the instance's, not the shared store's.
    assert env["BENTOML_HOME"] == str(tmp_path / "var" / "run" / "h-3000" / "bentoml")
    assert env["SERVEWATCH_METRICS_ENABLED"] == "false"
    assert env["SERVEWATCH_PREDICTION_LOG_ENABLED"] == "true"
    assert (tmp_path / "var" / "bentoml").is_dir()


def test_a_bad_config_stops_before_the_server_starts(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("limits: {max_payload_bytes: 1}\n")
    with pytest.raises(ConfigError, match=r"limits\.max_payload_bytes"):
        serve_environment(config=config)


def test_topology_and_model_workers_reach_the_server_as_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "var"))
    env = serve_environment(topology="split", model_workers=3, instance="h-3000")
    assert env["SERVEWATCH_TOPOLOGY"] == "split"
    assert env["SERVEWATCH_MODEL_SERVICE_WORKERS"] == "3"
    monkeypatch.delenv("SERVEWATCH_TOPOLOGY", raising=False)
    assert "SERVEWATCH_TOPOLOGY" not in serve_environment(instance="h-3000")  # single: default
