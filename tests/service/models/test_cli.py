"""`servewatch models build|list|sync` through the Typer app, against temporary homes and stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.models.cli import app
from storage.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, models_home: Path, tmp_path: Path) -> Path:
    """Settings pointing at a copy of the session's store; BENTOML_HOME restored afterwards."""
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SERVEWATCH_MODELS_HOME", str(models_home))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "elsewhere"))  # the settings must win
    monkeypatch.delenv("SERVEWATCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("SERVEWATCH_CONFIG_FILE", raising=False)
    return models_home


def test_build_of_unchanged_inputs_is_up_to_date_and_hints_at_migration(cli_env, registered):
    result = runner.invoke(app, ["build"])
    assert result.exit_code == 0, result.output
    for name, model in registered.items():
        assert f"{name} {model.version}: up to date" in result.output
    assert "servewatch db upgrade" in result.output


def test_build_mirrors_versions_into_a_migrated_store(cli_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    result = runner.invoke(app, ["build", "--model", "risk_scorer", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "risk_scorer" in result.output
    assert "ticket_classifier:" not in result.output
    assert "mirrored 2 model versions" in result.output


def test_force_rebuilds_and_reports_the_evaluation(cli_env, registered):
    result = runner.invoke(app, ["build", "-m", "risk_scorer", "--force"])
    assert result.exit_code == 0, result.output
    version = registered["risk_scorer"].version
    assert f"risk_scorer {version}: built" in result.output
    assert "accuracy" in result.output
    assert "parity max" in result.output


def test_another_data_seed_builds_a_retrained_candidate_beside_the_registered_one(
    cli_env, registered
):
    result = runner.invoke(app, ["build", "-m", "risk_scorer", "--data-seed", "1818"])
    assert result.exit_code == 0, result.output
    assert ": built" in result.output
    listed = runner.invoke(app, ["list", "--name", "risk_scorer", "--json"])
    versions = {v["version"] for v in json.loads(listed.stdout)}
    assert registered["risk_scorer"].version in versions
    assert len(versions) == 2  # its own version: trained on other data


def test_an_unknown_model_is_a_usage_error(cli_env):
    result = runner.invoke(app, ["build", "--model", "sentiment"])
    assert result.exit_code == 2
    assert "unknown model 'sentiment'" in result.output


def test_list_json_gives_versions_with_metadata(cli_env, registered):
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(listed) == set(registered)
    for name, model in registered.items():
        assert listed[name]["version"] == model.version
        assert listed[name]["latest"] is True
        assert listed[name]["metadata"]["snapshot_id"] == model.metadata["snapshot_id"]
        assert Path(listed[name]["path"]) == cli_env.resolve() / "models" / name / model.version


def test_list_shows_a_table(cli_env, registered):
    result = runner.invoke(app, ["list", "--name", "ticket_classifier"])
    assert result.exit_code == 0, result.output
    assert registered["ticket_classifier"].version in result.output
    assert "risk_scorer" not in result.output
    assert "macro F1" in result.output


def test_list_of_an_empty_store_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVEWATCH_MODELS_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "empty"))
    assert json.loads(runner.invoke(app, ["list", "--json"]).stdout) == []
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "servewatch models build" in result.output


def test_sync_refuses_an_unmigrated_store(cli_env, tmp_path):
    result = runner.invoke(app, ["sync", "--database-url", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 1
    assert "servewatch db upgrade" in result.output
    assert not (tmp_path / "none.db").exists()
