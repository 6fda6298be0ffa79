"""`servewatch replay` end to end: stored inputs in the store, real models from the registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from core.config import load_settings
from servewatch.cli import app
from servewatch.replay import INPUT_MISMATCH, ModelLoader, model_value, score
from service.models.build import build_all
from service.models.ticket_corpus import generate_corpus
from storage.migrate import upgrade
from storage.writer import write_predictions
from tests.support.models import build_noise_ticket_model

MODEL = "ticket_classifier"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SINCE, UNTIL = "2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z"
GATES = {"min_agreement": 0.9, "max_schema_failure_rate": 0.001, "max_class_shift_psi": 0.25}
STORED, WITHOUT_INPUT, OUTSIDE = 240, 15, 10


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, object]:
    """A store holding the ticket classifier (built as the repo builds it) and a bad candidate."""
    home = tmp_path_factory.mktemp("replay-models") / "bentoml"
    good, risk = build_all([MODEL, "risk_scorer"], home=home)
    bad = build_noise_ticket_model(home)
    assert bad.version != good.version
    return {"home": home, "answering": good.version, "bad": bad.version, "risk": risk.version}


@pytest.fixture
def replay_env(versions, tmp_path, monkeypatch) -> dict[str, object]:
    """A migrated SQLite store of answered tickets (stored inputs, some without), and a config."""
    monkeypatch.setenv("SERVEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SERVEWATCH_MODELS_HOME", str(versions["home"]))
    monkeypatch.setenv("SERVEWATCH_USE_CUDA", "false")
    for name in ("SERVEWATCH_DATABASE_URL", "SERVEWATCH_CONFIG_FILE", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    from storage.engine import create_store_engine

    engine = create_store_engine(url)
    write_predictions(engine, _answered_rows(versions["answering"]))
    engine.dispose()
    config = tmp_path / "servewatch.yaml"
    config.write_text(yaml.safe_dump({"replay": {"gates": GATES}}))
    return {"url": url, "config": config, "out": tmp_path / "out"}


def _answered_rows(version: str) -> list[dict[str, object]]:
    """Rows as the service writes them: the answering version scored each stored ticket."""
    model = ModelLoader(load_settings()).load(MODEL, version)
    tickets = generate_corpus(STORED + WITHOUT_INPUT + OUTSIDE, seed=77)
    answers = model.predict([model.prepare(t.text) for t in tickets]).items
    rows = []
    for i, (ticket, answer) in enumerate(zip(tickets, answers, strict=True)):
        inside = i < STORED + WITHOUT_INPUT
        rows.append(
            {
                "request_id": f"req-{i}",
                "ts": T0 + timedelta(seconds=10 * i) if inside else T0 - timedelta(hours=1),
                "tenant": ("acme", "globex")[i % 2],
                "endpoint": "classify_ticket",
                "model_name": MODEL,
                "model_version": version,
                "predicted_class": answer.predicted_class,
                "confidence": answer.confidence,
                "latency_ms": 3.0,
                "compute_ms": 0.4,
                "batch_size": 1,
                "status": "ok",
                "probabilities": answer.probabilities,
                "features": None if STORED <= i < STORED + WITHOUT_INPUT else {"text": ticket.text},
            }
        )
    return rows


def _replay(env, candidate: str, *extra: str):
    arguments = [
        "replay",
        "--candidate", candidate,
        "--since", SINCE, "--until", UNTIL,
        "--database-url", str(env["url"]),
        "--config", str(env["config"]),
        "--out", str(env["out"]),
        *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    report = env["out"] / "replay.json"
    return result, json.loads(report.read_text()) if report.exists() else None


def test_the_answering_version_as_candidate_agrees_fully_and_passes(versions, replay_env):
    result, report = _replay(replay_env, f"{MODEL}:{versions['answering']}")
    assert result.exit_code == 0, result.output
    assert report["passed"] is True
    assert report["replayed"] == STORED
    assert report["skipped"] == {"without_inputs": WITHOUT_INPUT, "answering_version_missing": 0}
    assert report["answering_versions"] == {versions["answering"]: STORED}
    overall = report["comparisons"]["*"]
    assert overall["agreement"] == 1.0
    assert overall["baseline_reproduces_stored_class"] == 1.0
    assert overall["schema_failure_rate"] == 0.0
    assert overall["class_shift"]["psi"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert set(report["comparisons"]) == {"*", "acme", "globex"}
    assert overall["latency_ms"]["candidate"]["p95"] > 0
    assert [g["gate"] for g in report["gates"]] == list(GATES)
    page = (replay_env["out"] / "replay.html").read_text()
    assert page.count('src="data:image/png;base64,') == 5
    assert "Gates passed" in page


def test_a_candidate_trained_on_shuffled_labels_fails_its_gates_with_exit_1(versions, replay_env):
    result, report = _replay(replay_env, f"{MODEL}:{versions['bad']}")
    assert result.exit_code == 1, result.output
    gates = {g["gate"]: g for g in report["gates"]}
    assert gates["min_agreement"]["passed"] is False
    assert gates["min_agreement"]["value"] < 0.5
    assert gates["min_agreement"]["n"] == STORED
    assert gates["max_schema_failure_rate"]["passed"] is True
    confusion = report["comparisons"]["*"]["confusion"]
    off_diagonal = sum(n for row, cells in confusion.items() for c, n in cells.items() if c != row)
    assert off_diagonal > STORED / 2
    assert "Gates FAILED" in (replay_env["out"] / "replay.html").read_text()


def test_tenant_and_limit_narrow_the_replay(versions, replay_env):
    result, report = _replay(
        replay_env, f"{MODEL}:{versions['answering']}", "--tenant", "acme", "--limit", "50"
    )
    assert result.exit_code == 1  # 50 items are too few for the class-shift gate to judge
    assert report["replayed"] == 50
    assert set(report["comparisons"]) == {"*", "acme"}
    gates = {g["gate"]: g for g in report["gates"]}
    assert gates["max_class_shift_psi"]["status"] == "insufficient_data"
    assert gates["min_agreement"]["passed"] is True


def test_an_unknown_candidate_cannot_run(replay_env):
    result, report = _replay(replay_env, f"{MODEL}:0000000000000000")
    assert result.exit_code == 2
    assert report is None
    result, _ = _replay(replay_env, "no-version-given")
    assert result.exit_code == 2


def test_stored_feature_maps_are_scored_and_inputs_a_version_cannot_take_are_failures(
    versions, replay_env
):
    model = ModelLoader(load_settings()).load("risk_scorer", versions["risk"])
    sample = model.registered.metadata["sample"]
    stored = [
        sample["input"],
        {k: v for k, v in sample["input"].items() if k != model.features[0]},
        {"text": "a ticket given to the risk model"},
    ]
    results = score(model, [model_value(features) for features in stored], batch_size=2)
    assert results[0][0].predicted_class == sample["expected_class"]
    assert results[0][1] > 0
    assert [r.failure for r, _ in results[1:]] == [INPUT_MISMATCH, INPUT_MISMATCH]
