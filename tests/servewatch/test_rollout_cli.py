"""`servewatch rollout start | promote | abort | list` and `servewatch rollback` on a real
model store and a migrated store (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from core.config import load_app_config
from servewatch.cli import app
from servewatch.release import canonical_config, config_digest
from service.models.build import build_model
from service.models.datasets import risk_dataset
from service.models.recipes import recipe
from storage.audit import verify
from storage.engine import create_store_engine
from storage.releases import insert_release
from storage.rollouts import list_rollouts
from storage.schema import audit_log

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def risk_versions(tmp_path_factory) -> dict[str, object]:
    home = tmp_path_factory.mktemp("rollout-cli-models") / "bentoml"
    first = build_model(recipe("risk_scorer"), home=home)
    other = replace(recipe("risk_scorer"), make_dataset=lambda: risk_dataset(seed=1818))
    second = build_model(other, home=home)
    return {"home": home, "baseline": first.version, "candidate": second.version}


@pytest.fixture
def env(risk_versions, store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SERVEWATCH_MODELS_HOME", str(risk_versions["home"]))
    monkeypatch.setenv("SERVEWATCH_DATABASE_URL", store_url)
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("COLUMNS", "240")  # rich tables unabridged
    for name in ("SERVEWATCH_CONFIG_FILE", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "servewatch.yaml"
    route = {"default": {"model": "risk_scorer", "version": risk_versions["baseline"]}}
    config.write_text(yaml.safe_dump({"routing": {"predict_risk": route}}))
    engine = create_store_engine(store_url)
    yield {"config": config, "engine": engine, **risk_versions}
    engine.dispose()


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _start(env, *extra: str):
    candidate = f"risk_scorer:{env['candidate']}"
    return _run(
        "rollout", "start", "--candidate", candidate, "--config", str(env["config"]), *extra
    )


def _audit(env) -> list[tuple[str, str]]:
    with env["engine"].connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
    return [(r["kind"], r["details"]["action"]) for r in rows]


def test_start_promote_and_rollback_of_a_promoted_rollout(env):
    result = _start(env, "--steps", "10,100", "--tenant", "acme", "--sticky")
    assert result.exit_code == 0, result.output
    assert "rollout started" in result.output
    [rollout] = list_rollouts(env["engine"])
    assert (rollout.candidate_version, rollout.baseline_version) == (
        env["candidate"],
        env["baseline"],
    )
    assert (rollout.endpoints, rollout.weight, rollout.mode) == (("predict_risk",), 10.0, "sticky")
    assert (rollout.tenant, rollout.actor) == ("acme", "tester")
    refused = _start(env)
    assert refused.exit_code == 1
    assert "is active on predict_risk" in refused.output
    assert _run("rollout", "promote").exit_code == 0
    assert list_rollouts(env["engine"])[0].state == "promoted"
    result = _run("rollback")
    assert result.exit_code == 0, result.output
    assert list_rollouts(env["engine"])[0].state == "rolled_back"
    assert _audit(env) == [
        ("rollout_step", "start"),
        ("promotion", "promote"),
        ("rollback", "rollback"),
    ]
    assert verify(env["engine"]).ok


def test_abort_and_rollback_of_an_active_rollout(env):
    assert _start(env).exit_code == 0
    result = _run("rollout", "abort", "--reason", "errors up")
    assert result.exit_code == 0, result.output
    assert list_rollouts(env["engine"])[0].state == "aborted"
    assert _run("rollout", "abort").exit_code == 1  # none active any more
    assert _start(env).exit_code == 0
    assert _run("rollback").exit_code == 0
    assert [r.state for r in list_rollouts(env["engine"])] == ["aborted", "aborted"]
    listed = _run("rollout", "list")
    assert listed.exit_code == 0
    assert listed.output.count("aborted") == 2


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ("risk_scorer", "expected MODEL:VERSION"),
        ("risk_scorer:v404", "risk_scorer"),
        ("weather_model:v1", "no route serves weather_model"),
    ],
)
def test_a_bad_candidate_is_refused(env, candidate, message):
    result = _run("rollout", "start", "--candidate", candidate, "--config", str(env["config"]))
    assert result.exit_code == 1
    assert message in result.output
    assert list_rollouts(env["engine"]) == []


def test_the_baseline_itself_is_refused(env):
    candidate = f"risk_scorer:{env['baseline']}"
    result = _run("rollout", "start", "--candidate", candidate, "--config", str(env["config"]))
    assert result.exit_code == 1
    assert "already serves" in result.output


def test_steps_are_checked(env):
    result = _start(env, "--steps", "50,25,100")
    assert result.exit_code == 1
    assert "steps must rise" in result.output


def test_rollback_without_a_rollout_restores_the_parent_release(env, tmp_path):
    assert _run("rollback").exit_code == 1  # nothing to roll back yet
    ids = []
    for version in ("baseline", "candidate"):
        route = {"default": {"model": "risk_scorer", "version": env[version]}}
        config = load_app_config_text(tmp_path, {"routing": {"predict_risk": route}})
        ids.append(
            insert_release(
                env["engine"],
                bento_tag=None,
                model_tags=[f"risk_scorer:{env[version]}"],
                config_digest=config_digest(config),
                config=canonical_config(config),
                parent_id=ids[-1] if ids else None,
                created_at=T0,
                created_by="tester",
            )
        )
    refused = _run("rollback")
    assert refused.exit_code == 1
    assert "--config-out" in refused.output
    out = tmp_path / "restored.yaml"
    result = _run("rollback", "--config-out", str(out))
    assert result.exit_code == 0, result.output
    restored = load_app_config(out)
    assert restored.routing["predict_risk"].default.version == env["baseline"]
    assert _audit(env) == [("rollback", "release")]


def load_app_config_text(tmp_path, data):
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_app_config(path)
