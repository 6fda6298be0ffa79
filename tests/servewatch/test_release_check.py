"""`servewatch release check` and the checks `release build` runs: real models from the registry
(one trained on shuffled labels), a real store, and the running service over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from servewatch.cli import app
from service.models.build import GOLDEN_PER_CLASS, build_all
from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.releases import list_releases
from storage.schema import audit_log
from tests.service.conftest import KEYS, ServiceServer, write_config
from tests.support.models import build_noise_ticket_model
from tests.support.tcp_proxy import free_port

TICKETS, RISK = "ticket_classifier", "risk_scorer"


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, object]:
    """A store holding both models as the repo builds them, and a ticket model of noise."""
    home = tmp_path_factory.mktemp("check-models") / "bentoml"
    good, risk = build_all([TICKETS, RISK], home=home)
    bad = build_noise_ticket_model(home)
    return {"home": home, "good": good.version, "risk": risk.version, "bad": bad.version}


@pytest.fixture
def env(versions, tmp_path, monkeypatch) -> dict[str, object]:
    """A migrated SQLite store, the models' home, CPU inference."""
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SERVEWATCH_MODELS_HOME", str(versions["home"]))
    monkeypatch.setenv("SERVEWATCH_USE_CUDA", "false")
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("SERVEWATCH_DATABASE_URL", "SERVEWATCH_CONFIG_FILE", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return {"url": url, "json": tmp_path / "check.json", "tmp": tmp_path}


def _check(env, *arguments: str):
    extra = ["--database-url", str(env["url"]), "--json", str(env["json"])]
    result = CliRunner().invoke(app, ["release", "check", *arguments, *extra])
    report = json.loads(Path(env["json"]).read_text()) if Path(env["json"]).exists() else None
    return result, report


def test_golden_sets_are_stored_with_each_model_stratified_by_true_class(versions):
    from service.models.registry import get_model

    for name, version in ((TICKETS, versions["good"]), (RISK, versions["risk"])):
        model = get_model(name, version, home=versions["home"])
        cases = model.metadata["golden"]["cases"]
        per_class = {c: sum(case["expected_class"] == c for case in cases) for c in model.classes}
        assert set(per_class.values()) == {GOLDEN_PER_CLASS}, per_class
        assert all(0 <= case["confidence"] <= 1 for case in cases)


@pytest.mark.parametrize("which", ["good", "risk"])
def test_a_good_candidate_passes_every_check(versions, env, which):
    name = TICKETS if which == "good" else RISK
    result, report = _check(env, "--candidate", f"{name}:{versions[which]}")
    assert result.exit_code == 0, result.output
    checks = {(c["check"], c["problem"]) for c in report["checks"]}
    assert checks == {(n, None) for n in ("store", "registry", "loads", "provider", "golden")}
    (golden,) = report["golden"]
    assert golden["accuracy"] >= golden["min_accuracy"]
    assert golden["failing"] == []


def test_a_candidate_trained_on_shuffled_labels_is_refused_naming_its_failing_cases(versions, env):
    result, report = _check(env, "--candidate", f"{TICKETS}:{versions['bad']}")
    assert result.exit_code == 1
    (golden,) = report["golden"]
    assert not golden["passed"]
    assert golden["accuracy"] < 0.5  # measured: about a third of its cases right
    wrong = [case for case in golden["failing"] if case["got"]["class"] != case["expected_class"]]
    assert len(wrong) == round((1 - golden["accuracy"]) * golden["cases"])
    first = wrong[0]
    assert f"FAIL {TICKETS}:{versions['bad']}" in result.output
    assert first["input"] in result.output
    assert f"expected {first['expected_class']}" in result.output
    assert f"got {first['got']['class']}" in result.output


def test_an_unknown_version_and_a_store_that_does_not_answer_fail(versions, env):
    result, report = _check(env, "--candidate", f"{TICKETS}:nope")
    assert result.exit_code == 1
    assert [c["check"] for c in report["checks"] if c["problem"]] == ["registry"]
    env["url"] = f"sqlite:///{Path(env['tmp']) / 'unmigrated.db'}"
    result, report = _check(env, "--candidate", f"{TICKETS}:{versions['good']}")
    assert result.exit_code == 1
    assert [c["check"] for c in report["checks"] if c["problem"]] == ["store"]


def _routing(ticket_version: str, risk_version: str) -> dict[str, object]:
    return {
        "classify_ticket": {"default": {"model": TICKETS, "version": ticket_version}},
        "classify_tickets": {"default": {"model": TICKETS, "version": ticket_version}},
        "predict_risk": {"default": {"model": RISK, "version": risk_version}},
    }


def _audit_checks(url: str) -> list[object]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(audit_log.c.details)).scalars().all()
        return [row["checks"] for row in rows if "checks" in row]
    finally:
        engine.dispose()


def test_release_build_refuses_a_failing_candidate_unless_told_to_skip_the_checks(versions, env):
    runner = CliRunner()
    bad = write_config(Path(env["tmp"]) / "bad.yaml", routing=_routing(versions["bad"], "latest"))
    routing = _routing(str(versions["good"]), "latest")  # latest ticket model: the noise
    good = write_config(Path(env["tmp"]) / "good.yaml", routing=routing)
    build = ["release", "build", "--no-bento", "--database-url", str(env["url"])]
    refused = runner.invoke(app, [*build, "--config", str(bad)])
    assert refused.exit_code == 1
    assert "release refused: its checks failed" in refused.output
    engine = create_store_engine(str(env["url"]))
    assert list_releases(engine) == []
    accepted = runner.invoke(app, [*build, "--config", str(good)])
    assert accepted.exit_code == 0, accepted.output
    skipped = runner.invoke(app, [*build, "--config", str(bad), "--skip-checks"])
    assert skipped.exit_code == 0, skipped.output
    assert len(list_releases(engine)) == 2
    engine.dispose()
    passed, unchecked = _audit_checks(str(env["url"]))
    assert passed["passed"] is True
    assert set(passed["golden_accuracy"]) == {
        f"{TICKETS}:{versions['good']}",
        f"{RISK}:{versions['risk']}",
    }
    assert unchecked == {"skipped": True}


def test_the_release_check_of_a_stored_release_checks_its_pinned_models(versions, env):
    runner = CliRunner()
    bad = write_config(Path(env["tmp"]) / "bad.yaml", routing=_routing(versions["bad"], "latest"))
    build = ["release", "build", "--no-bento", "--database-url", str(env["url"])]
    assert runner.invoke(app, [*build, "--config", str(bad), "--skip-checks"]).exit_code == 0
    result, report = _check(env, "--release", "1")
    assert result.exit_code == 1
    failed = {c["subject"] for c in report["checks"] if c["problem"]}
    assert failed == {f"{TICKETS}:{versions['bad']}"}


def test_over_http_the_golden_sets_run_on_the_live_service_and_name_the_bad_route(versions, env):
    """One real server: the single-ticket route serves the noise model, the others good ones."""
    routing = _routing(versions["good"], versions["risk"])
    routing["classify_ticket"] = {"default": {"model": TICKETS, "version": versions["bad"]}}
    config = write_config(Path(env["tmp"]) / "served.yaml", routing=routing)
    server = ServiceServer(
        home=Path(env["tmp"]) / "service",
        config=config,
        models_home=Path(str(versions["home"])),
        database_url=str(env["url"]),
    ).start()
    try:
        result, report = _check(
            env, "--url", server.url, "--api-key", KEYS["acme"], "--config", str(config)
        )
    finally:
        server.stop()
    assert result.exit_code == 1, result.output
    verdicts = {(g["model"], g["version"]): g for g in report["golden"]}
    assert not verdicts[(TICKETS, versions["bad"])]["passed"]
    assert verdicts[(RISK, versions["risk"])]["passed"]
    failing = {c["subject"] for c in report["checks"] if c["problem"]}
    assert failing == {f"classify_ticket -> {TICKETS}:{versions['bad']}"}
    assert ("readyz", None) in {(c["check"], c["problem"]) for c in report["checks"]}
    assert f"FAIL {TICKETS}:{versions['bad']}" in result.output


def test_over_http_a_service_that_does_not_answer_fails_every_case(versions, env):
    routing = _routing(str(versions["good"]), str(versions["risk"]))
    config = write_config(Path(env["tmp"]) / "nobody.yaml", routing=routing)
    url = f"http://127.0.0.1:{free_port()}"
    arguments = ["--url", url, "--api-key", KEYS["globex"], "--config", str(config)]
    result, report = _check(env, *arguments)
    assert result.exit_code == 1
    assert report["checks"][0]["check"] == "readyz"
    assert report["checks"][0]["problem"].startswith("no answer")
    # globex may call the ticket endpoints only: two golden sets, no case answered
    assert [g["model"] for g in report["golden"]] == [TICKETS, TICKETS]
    for golden in report["golden"]:
        assert len(golden["failing"]) == golden["cases"]
        assert all(case["problem"].startswith("no answer") for case in golden["failing"])
    unknown = _check(env, "--url", url, "--api-key", "nobody's key", "--config", str(config))[1]
    assert unknown["checks"][-1] == {
        "check": "tenant",
        "subject": url,
        "problem": "the API key is no tenant's",
    }
