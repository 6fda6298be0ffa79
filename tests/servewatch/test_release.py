"""Releases: routes pinned once at build time, the Bento's inputs, the stored row and its audit
event, diffs; on a real BentoML model store (the two models, built once per session)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from core.config import AppConfig, load_app_config
from servewatch.cli import app
from servewatch.release import (
    BENTOFILE,
    BUILD_DIR,
    ReleaseError,
    build_bento,
    config_digest,
    diff_releases,
    export_requirements,
    model_tags,
    pin_routing,
    record_release,
    unpinned_routes,
    write_build_inputs,
)
from service.models.registry import get_model
from storage.audit import verify
from storage.releases import get_release
from storage.schema import audit_log
from tests.service.conftest import built_models_home, registered_models  # noqa: F401 - fixtures

PROJECT_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROUTING = {
    "classify_ticket": {"default": {"model": "ticket_classifier"}},
    "predict_risk": {
        "default": {"model": "risk_scorer", "version": "latest"},
        "rules": [{"region": "eu", "model": "risk_scorer"}],
    },
}


def _resolver(home: Path):
    return lambda name, version: get_model(name, version, home=home).version


@pytest.fixture
def pinned(built_models_home: Path) -> AppConfig:  # noqa: F811 - the imported fixture
    return pin_routing(AppConfig(routing=ROUTING), _resolver(built_models_home))


def test_latest_is_resolved_once_to_the_newest_registered_version(pinned, registered_models):  # noqa: F811
    risk = registered_models["risk_scorer"].version
    ticket = registered_models["ticket_classifier"].version
    route = pinned.routing["predict_risk"]
    assert route.default.version == risk
    assert [(r.region, r.version) for r in route.rules] == [("eu", risk)]
    assert pinned.routing["classify_ticket"].default.version == ticket
    assert unpinned_routes(pinned) == []
    assert "predict_risk" in unpinned_routes(AppConfig(routing=ROUTING))
    assert f"risk_scorer:{risk}" in model_tags(pinned)


def test_an_exact_version_stays_and_an_unknown_one_is_refused(pinned, built_models_home):  # noqa: F811
    again = pin_routing(pinned, _resolver(built_models_home))
    assert again == pinned
    missing = {"predict_risk": {"default": {"model": "risk_scorer", "version": "nosuch"}}}
    with pytest.raises(ReleaseError, match="risk_scorer:nosuch"):
        pin_routing(AppConfig(routing=missing), _resolver(built_models_home))


def test_the_digest_covers_the_configuration_and_nothing_else(pinned):
    assert config_digest(pinned) == config_digest(AppConfig.model_validate(pinned.model_dump()))
    changed = pinned.model_copy(
        update={"limits": pinned.limits.model_copy(update={"max_bulk_items": 7})}
    )
    assert config_digest(changed) != config_digest(pinned)
    assert re.fullmatch("[0-9a-f]{64}", config_digest(pinned))


def test_the_requirements_are_the_locked_versions_without_hashes():
    requirements = export_requirements(PROJECT_ROOT)
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", requirements, flags=re.M))
    assert pins["bentoml"] == importlib.metadata.version("bentoml")
    assert pins["onnxruntime-gpu"] == importlib.metadata.version("onnxruntime-gpu")
    assert "--hash" not in requirements
    assert "pytest" not in pins  # dev dependencies stay out of the Bento


def test_build_inputs_hold_the_pinned_config_and_tags(tmp_path, pinned):
    shutil.copy(PROJECT_ROOT / BENTOFILE, tmp_path / BENTOFILE)
    bentofile = write_build_inputs(tmp_path, pinned, "bentoml==1.0\n")
    spec = yaml.safe_load(bentofile.read_text())
    assert spec["models"] == model_tags(pinned)
    assert spec["service"] == "service.app:Servewatch"
    out = tmp_path / BUILD_DIR
    assert spec["python"]["requirements_txt"] == (BUILD_DIR / "requirements.txt").as_posix()
    assert (out / "requirements.txt").read_text() == "bentoml==1.0\n"
    config_path = (BUILD_DIR / "servewatch.yaml").as_posix()
    envs = {e["name"]: e["value"] for e in spec["envs"]}
    assert envs["SERVEWATCH_CONFIG_FILE"] == config_path
    assert config_path in spec["include"]
    assert load_app_config(tmp_path / config_path) == pinned
    with pytest.raises(ReleaseError, match="predict_risk"):
        write_build_inputs(tmp_path, AppConfig(routing=ROUTING), "")


def test_a_release_names_its_parent_and_is_audited(store_engine, pinned):
    first = record_release(store_engine, pinned, bento_tag="servewatch:a", actor="alice", now=T0)
    second = record_release(
        store_engine, pinned, bento_tag=None, actor="bob", now=T0 + timedelta(hours=1)
    )
    assert first.parent_id is None
    assert second.parent_id == first.release_id
    stored = get_release(store_engine, second.release_id)
    assert stored is not None
    assert stored.config_digest == config_digest(pinned)
    assert AppConfig.model_validate(stored.config) == pinned
    with store_engine.connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
    assert [(r["kind"], r["actor"]) for r in rows] == [("release", "alice"), ("release", "bob")]
    assert rows[1]["details"]["release_id"] == second.release_id
    assert rows[1]["details"]["model_tags"] == model_tags(pinned)
    assert verify(store_engine).ok


def test_diff_names_changed_models_routes_and_keys(store_engine, pinned):
    a = record_release(store_engine, pinned, bento_tag=None, actor="a", now=T0)
    route = pinned.routing["predict_risk"]
    moved = route.model_copy(update={"default": route.default.model_copy(update={"version": "v9"})})
    limits = pinned.limits.model_copy(update={"max_bulk_items": 7})
    changed = pinned.model_copy(update={"routing": {**pinned.routing, "predict_risk": moved}})
    changed = changed.model_copy(update={"limits": limits})
    b = record_release(store_engine, changed, bento_tag=None, actor="a", now=T0)
    before, after = get_release(store_engine, a.release_id), get_release(store_engine, b.release_id)
    assert before is not None
    assert after is not None
    changes = {(c.area, c.key): (c.before, c.after) for c in diff_releases(before, after)}
    old = route.default.version
    assert changes[("model", "risk_scorer:v9")] == (None, "risk_scorer:v9")
    assert changes[("route", "routing.predict_risk.default.version")] == (old, "v9")
    assert changes[("config", "limits.max_bulk_items")] == (pinned.limits.max_bulk_items, 7)
    assert diff_releases(before, before) == []


def test_release_commands_list_show_and_diff(tmp_path, pinned, monkeypatch):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "--database-url", url]).exit_code == 0
    from storage.engine import create_store_engine

    engine = create_store_engine(url)
    try:
        first = record_release(engine, pinned, bento_tag="servewatch:x", actor="alice", now=T0)
        second = record_release(engine, pinned, bento_tag="servewatch:y", actor="bob", now=T0)
    finally:
        engine.dispose()
    monkeypatch.setenv("COLUMNS", "200")
    listed = runner.invoke(app, ["release", "list", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    assert "servewatch:x" in listed.output
    assert "servewatch:y" in listed.output
    shown = runner.invoke(app, ["release", "show", str(second.release_id), "--database-url", url])
    assert shown.exit_code == 0, shown.output
    assert pinned.routing["predict_risk"].default.version in shown.output
    assert f"parent {first.release_id}" in shown.output
    same = ["release", "diff", str(first.release_id), str(second.release_id)]
    diffed = runner.invoke(app, [*same, "--database-url", url])
    assert "no differences" in diffed.output
    missing = runner.invoke(app, ["release", "show", "99", "--database-url", url])
    assert missing.exit_code == 1


def _served_graph(tag: str, home: Path, tmp_path: Path, *, topology: str) -> list[str]:
    """The services BentoML would start serving Bento `tag` in `topology` (bulk route apart)."""
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "SERVEWATCH_TOPOLOGY": topology,
        "SERVEWATCH_BULK_MODEL_SERVICE": "true",
        "SERVEWATCH_HOME": str(tmp_path / "var"),
        "SERVEWATCH_MODELS_HOME": str(home),
    }
    # `bentoml serve TAG` loads the Bento this way before it starts any worker.
    script = f"import bentoml; print(*sorted(bentoml.load({tag!r}).all_services()))"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


@pytest.mark.slow
def test_bentoml_build_makes_a_bento_of_the_release(tmp_path, pinned, built_models_home):  # noqa: F811
    """The real `bentoml build` (about 10 s, offline): models by tag, the service's code only,
    the locked requirements and the pinned config; its Dockerfile checked as a file."""
    home = tmp_path / "bentoml"
    shutil.copytree(built_models_home / "models", home / "models")
    bentofile = write_build_inputs(PROJECT_ROOT, pinned, export_requirements(PROJECT_ROOT))
    tag = build_bento(PROJECT_ROOT, bentofile, home)
    name, version = tag.split(":")
    bento = home / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert sorted(m["tag"] for m in info["models"]) == model_tags(pinned)
    src = bento / "src"
    # Every service of every topology's graph, so that any of them can be served from it.
    names = {"servewatch", "servewatch_ticket", "servewatch_risk", "servewatch_ticket_bulk"}
    assert {service["name"] for service in info["services"]} == names
    assert _served_graph(tag, home, tmp_path, topology="split") == sorted(names)
    assert (src / "service" / "app.py").is_file()
    assert (src / "storage" / "migrations" / "versions").is_dir()
    assert not (src / "monitors").exists()
    assert not (src / "tests").exists()
    assert load_app_config(src / BUILD_DIR / "servewatch.yaml") == pinned
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert f"bentoml=={importlib.metadata.version('bentoml')}" in requirements
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "ENV SERVEWATCH_CONFIG_FILE=" in dockerfile
    assert "ENV SERVEWATCH_MODELS_HOME=" in dockerfile
    # BentoML's own Dockerfile, from the project's template: the locked requirements installed,
    # the service's home made before the service's user takes over.
    assert "env/python/install.sh" in dockerfile
    assert "requirements.txt" in (bento / "env" / "python" / "install.sh").read_text()
    assert "mkdir -p /home/bentoml/data" in dockerfile  # the service's home, for compose
    assert dockerfile.index("/home/bentoml/data") < dockerfile.index("USER bentoml")
