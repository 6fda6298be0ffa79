"""`servewatch rollout start | promote | abort | list` and `servewatch rollback` on a real
model store and a migrated store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

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
from service.models.risk_data import generate_accounts
from storage.audit import verify
from storage.engine import create_store_engine
from storage.releases import insert_release
from storage.rollouts import list_rollouts, rollouts_in_force
from storage.schema import audit_log
from storage.writer import write_predictions
from tests.support.models import build_noise_risk_model

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def risk_versions(tmp_path_factory) -> dict[str, object]:
    home = tmp_path_factory.mktemp("rollout-cli-models") / "bentoml"
    first = build_model(recipe("risk_scorer"), home=home)
    other = replace(recipe("risk_scorer"), make_dataset=lambda: risk_dataset(seed=1818))
    second = build_model(other, home=home)
    noise = build_noise_risk_model(home)
    return {
        "home": home,
        "baseline": first.version,
        "candidate": second.version,
        "noise": noise.version,
    }


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
    refused = _run("rollout", "promote")  # no traffic yet: the gates cannot judge
    assert refused.exit_code == 1
    assert "insufficient_data" in refused.output
    assert _run("rollout", "promote", "--force").exit_code == 0
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
    # Live too: the workers serve the parent's version through a rollout at 100 %.
    [pinned] = rollouts_in_force(env["engine"])
    assert (pinned.state, pinned.weight, pinned.endpoints) == ("promoted", 100.0, ("predict_risk",))
    assert (pinned.candidate_version, pinned.baseline_version) == (
        env["baseline"],
        env["candidate"],
    )
    assert "within seconds" in result.output
    undone = _run("rollback")  # a second rollback undoes the first
    assert undone.exit_code == 0, undone.output
    assert rollouts_in_force(env["engine"]) == []


def load_app_config_text(tmp_path, data):
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_app_config(path)


RISK_CLASSES = ("high", "low", "medium")


def _serve(
    env, version: str, n: int, *, seed: int, error_rate: float = 0.0, inputs: bool = True
) -> None:
    """`n` rows answered by `version` since the active rollout's step began, with the stored
    inputs of generated accounts (what the replay re-scores) unless `inputs` is off."""
    [rollout] = list_rollouts(env["engine"], limit=1)
    rng = random.Random(seed)
    records = []
    for i, account in enumerate(generate_accounts(n, seed)):
        failed = rng.random() < error_rate
        records.append(
            {
                "request_id": f"{version}-{seed}-{i}",
                # Microseconds after the step began: before the command's `now`.
                "ts": rollout.updated_at + timedelta(microseconds=i + 1),
                "tenant": "acme",
                "endpoint": "predict_risk",
                "model_name": "risk_scorer",
                "model_version": version,
                "predicted_class": None if failed else account.risk,
                "confidence": None if failed else round(rng.uniform(0.6, 1.0), 6),
                "latency_ms": rng.uniform(5, 15),
                "compute_ms": 1.0,
                "batch_size": 1,
                "status": "model_error" if failed else "ok",
                "features": account.features if inputs else None,
            }
        )
    write_predictions(env["engine"], records)


def test_status_judges_the_step_and_promote_follows_its_verdict(env, tmp_path):
    assert _start(env, "--steps", "20,100").exit_code == 0
    out = tmp_path / "status.json"
    waiting = _run("rollout", "status", "--json", str(out))
    assert waiting.exit_code == 0, waiting.output
    assert json.loads(out.read_text())["verdict"] == "insufficient_data"
    assert "100 candidate rows needed" in waiting.output
    assert "no baseline row" in waiting.output  # nothing to replay yet, and why

    _serve(env, env["baseline"], 800, seed=1)
    _serve(env, env["candidate"], 200, seed=2)
    result = _run("rollout", "status", "--json", str(out), "--config", str(env["config"]))
    assert result.exit_code == 0, result.output
    found = json.loads(out.read_text())
    assert found["verdict"] == "pass"
    assert (found["baseline_window"]["n"], found["candidate_window"]["n"]) == (800, 200)
    gates = {g["gate"]: g for g in found["gates"]}
    assert {g["verdict"] for g in gates.values()} == {"pass"}
    # 200 of the step's baseline-answered inputs re-scored by both versions.
    assert gates["max_disagreement"]["n"] == 200
    assert found["replay"]["n"] == 200
    assert "max_disagreement" in result.output

    promoted = _run("rollout", "promote", "--config", str(env["config"]))
    assert promoted.exit_code == 0, promoted.output
    [rollout] = list_rollouts(env["engine"])
    assert rollout.state == "promoted"
    with env["engine"].connect() as connection:
        event = (
            connection.execute(select(audit_log).where(audit_log.c.kind == "promotion"))
            .mappings()
            .one()
        )
    assert event["details"]["gates"]["verdict"] == "pass"
    assert "forced" not in event["details"]


def test_a_candidate_is_checked_before_it_gets_traffic_and_a_failing_one_never_does(env):
    refused = _run(
        "rollout", "start", "--candidate", f"risk_scorer:{env['noise']}",
        "--config", str(env["config"]),
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "golden cases failing" in refused.output
    assert list_rollouts(env["engine"]) == []  # nothing stored, no traffic moved
    assert _start(env).exit_code == 0
    with env["engine"].connect() as connection:
        start = connection.execute(select(audit_log)).mappings().one()
    assert start["details"]["checks"]["passed"] is True
    accuracy = start["details"]["checks"]["golden_accuracy"]
    assert f"risk_scorer:{env['candidate']}" in accuracy


def test_a_route_saying_latest_is_planned_on_the_newest_release_that_pins_it(env, tmp_path):
    pinned = {"default": {"model": "risk_scorer", "version": env["baseline"]}}
    release = load_app_config_text(tmp_path, {"routing": {"predict_risk": pinned}})
    insert_release(
        env["engine"],
        bento_tag=None,
        model_tags=[f"risk_scorer:{env['baseline']}"],
        config_digest=config_digest(release),
        config=canonical_config(release),
        parent_id=None,
        created_at=T0,
        created_by="tester",
    )
    floating = tmp_path / "floating.yaml"  # `latest` is the version registered last now
    route = {"default": {"model": "risk_scorer", "version": "latest"}}
    floating.write_text(yaml.safe_dump({"routing": {"predict_risk": route}}))
    candidate = f"risk_scorer:{env['candidate']}"
    started = _run("rollout", "start", "--candidate", candidate, "--config", str(floating))
    assert started.exit_code == 0, started.output
    [rollout] = list_rollouts(env["engine"])
    assert rollout.baseline_version == env["baseline"]  # what the release serves


def test_skipping_the_candidate_checks_is_on_the_record(env):
    candidate = f"risk_scorer:{env['noise']}"
    args = ("--candidate", candidate, "--config", str(env["config"]), "--skip-checks")
    assert _run("rollout", "start", *args).exit_code == 0
    with env["engine"].connect() as connection:
        start = connection.execute(select(audit_log)).mappings().one()
    assert start["details"]["checks"] == {"skipped": True}


def test_without_stored_inputs_the_other_gates_decide_and_status_says_why(env, tmp_path):
    assert _start(env, "--steps", "20,100").exit_code == 0
    _serve(env, env["baseline"], 800, seed=1, inputs=False)
    _serve(env, env["candidate"], 200, seed=2, inputs=False)
    out = tmp_path / "status.json"
    result = _run("rollout", "status", "--json", str(out), "--config", str(env["config"]))
    assert result.exit_code == 0, result.output
    found = json.loads(out.read_text())
    assert found["verdict"] == "pass"
    assert "max_disagreement" not in {g["gate"] for g in found["gates"]}
    assert found["replay"]["rows_without_input"] == 800
    assert "disagreement not judged" in result.output


def test_a_candidate_that_errs_is_refused_then_forced_on_the_record(env):
    assert _start(env, "--steps", "20,100").exit_code == 0
    _serve(env, env["baseline"], 800, seed=1)
    _serve(env, env["candidate"], 200, seed=2, error_rate=0.3)
    status = _run("rollout", "status", "--config", str(env["config"]))
    assert status.exit_code == 1
    assert "verdict: fail" in status.output
    refused = _run("rollout", "promote", "--config", str(env["config"]))
    assert refused.exit_code == 1
    assert "max_error_rate_increase (fail)" in refused.output
    assert list_rollouts(env["engine"])[0].step_index == 0
    forced = _run("rollout", "promote", "--force", "--config", str(env["config"]))
    assert forced.exit_code == 0, forced.output
    assert "FORCED" in forced.output
    with env["engine"].connect() as connection:
        event = (
            connection.execute(select(audit_log).where(audit_log.c.kind == "promotion"))
            .mappings()
            .one()
        )
    assert event["details"]["forced"] is True
    assert event["details"]["gates"]["verdict"] == "fail"
