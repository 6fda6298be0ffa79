"""`servewatch audit stale` on a migrated store (SQLite and PostgreSQL) at an injected time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from servewatch.cli import app
from storage.engine import create_store_engine
from storage.model_versions import upsert_model_versions
from storage.releases import insert_release
from storage.rollouts import RolloutPlan, start_rollout
from storage.writer import write_predictions
from tests.storage.records import make_records

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RECENT, OLD = NOW - timedelta(days=2), NOW - timedelta(days=40)


def _predictions(endpoint: str, version: str, tenant: str, at: datetime, seed: int):
    records = make_records(3, seed=seed, start=at)
    for record in records:
        record.update(
            endpoint=endpoint, model_name="ticket_classifier", model_version=version, tenant=tenant
        )
    return records


@pytest.fixture
def env(store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SERVEWATCH_DATABASE_URL", store_url)
    monkeypatch.setenv("COLUMNS", "240")  # rich tables unabridged
    monkeypatch.delenv("SERVEWATCH_CONFIG_FILE", raising=False)
    config = tmp_path / "servewatch.yaml"
    ticket = {"model": "ticket_classifier", "version": "3"}
    config.write_text(
        yaml.safe_dump(
            {
                "tenants": {"acme": {}, "globex": {}},
                "routing": {
                    "classify_ticket": {"default": ticket},
                    "classify_tickets": {"default": ticket},
                },
            }
        )
    )
    engine = create_store_engine(store_url)
    write_predictions(
        engine,
        [
            *_predictions("classify_ticket", "3", "acme", RECENT, 1),
            *_predictions("classify_ticket", "2", "globex", OLD, 2),
        ],
        now=NOW,
    )
    upsert_model_versions(
        engine,
        [
            {
                "model_name": "ticket_classifier",
                "model_version": version,
                "created_at": NOW - timedelta(days=100),
                "snapshot_id": "s" * 12,
                "preprocessing_version": "v1",
                "labels": {},
                "metadata": {},
            }
            for version in ("1", "2", "3")
        ],
    )
    parent = None
    for n in (1, 2, 3, 4):
        parent = insert_release(
            engine,
            bento_tag=None,
            model_tags=[f"ticket_classifier:{n}"],
            config_digest=f"{n:064x}",
            config={},
            parent_id=parent,
            created_at=NOW - timedelta(days=50 - n),
            created_by="alice",
        )
    yield {"config": config, "engine": engine, "tmp": tmp_path}
    engine.dispose()


def _run(*args: str):
    return CliRunner().invoke(app, ["audit", "stale", *args], catch_exceptions=False)


def test_stale_lists_what_had_no_traffic_and_unreferenced_releases(env):
    out = env["tmp"] / "stale.json"
    result = _run(
        "--config", str(env["config"]), "--now", NOW.isoformat(), "--days", "30", "--json", str(out)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    flagged = {(item["kind"], item["name"]) for item in report["items"]}
    assert flagged == {
        ("model_version", "ticket_classifier:1"),
        ("model_version", "ticket_classifier:2"),
        ("route", "classify_tickets -> ticket_classifier:3"),
        ("endpoint", "classify_tickets"),
        # The endpoint the config leaves to its default route, never called.
        ("route", "predict_risk -> risk_scorer:latest"),
        ("endpoint", "predict_risk"),
        ("tenant", "globex"),
        ("release", "1"),
        ("release", "2"),
    }
    assert report["cutoff"] == "2026-11-02T12:00:00Z"
    assert "ticket_classifier:2" in result.output
    assert "never" in result.output


def test_a_version_a_rollout_names_keeps_its_release(env):
    plan = RolloutPlan(
        endpoints=("classify_ticket",),
        candidate_model="ticket_classifier",
        candidate_version="2",
        baseline_model="ticket_classifier",
        baseline_version="3",
    )
    start_rollout(env["engine"], plan, actor="t", now=NOW)
    out = env["tmp"] / "stale.json"
    result = _run("--config", str(env["config"]), "--now", NOW.isoformat(), "--json", str(out))
    assert result.exit_code == 0, result.output
    releases = {i["name"] for i in json.loads(out.read_text())["items"] if i["kind"] == "release"}
    assert releases == {"1"}


def test_more_days_see_older_traffic(env):
    out = env["tmp"] / "stale.json"
    args = ("--config", str(env["config"]), "--now", NOW.isoformat(), "--days", "60")
    assert _run(*args, "--json", str(out)).exit_code == 0
    names = {i["name"] for i in json.loads(out.read_text())["items"]}
    assert "globex" not in names
    assert "ticket_classifier:2" not in names


def test_a_bad_time_or_an_unmigrated_store_exits_with_one_line(env, tmp_path, monkeypatch):
    bad = _run("--config", str(env["config"]), "--now", "yesterday")
    assert bad.exit_code == 2
    assert "--now" in bad.output
    monkeypatch.setenv("SERVEWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    empty = _run("--config", str(env["config"]))
    assert empty.exit_code == 2
    assert "servewatch db upgrade" in empty.output
