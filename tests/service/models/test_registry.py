"""The registry API round trip in temporary BentoML homes, and reproducible versions."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.models.build import build_all, planned_version
from service.models.datasets import risk_dataset
from service.models.recipes import RECIPES
from service.models.registry import (
    ModelNotFoundError,
    get_model,
    list_models,
    register_model,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_get_model_returns_what_was_registered(registered, session_models_home):
    for name, model in registered.items():
        assert get_model(name, home=session_models_home) == model
        assert get_model(name, model.version, home=session_models_home) == model
        assert model.onnx_path == model.path / "model.onnx"
        assert model.onnx_path.is_file()
        assert model.path.is_relative_to(session_models_home)
        assert model.classes == model.metadata["classes"]
        assert model.baseline == model.metadata["evaluation"]["reference"]
        assert model.created_at.tzinfo is not None
        assert model.created_at.utcoffset() == UTC.utcoffset(None)
        assert model.labels["owner"] == "servewatch"


def test_list_models_round_trips_both_models(registered, session_models_home):
    listed = list_models(home=session_models_home)
    assert sorted((m.name, m.version) for m in listed) == sorted(
        (m.name, m.version) for m in registered.values()
    )
    assert list_models("risk_scorer", home=session_models_home) == [registered["risk_scorer"]]
    assert list_models("no_such_model", home=session_models_home) == []


def test_the_stored_onnx_file_serves_the_metadata_contract(registered):
    model = registered["risk_scorer"]
    io = model.metadata["onnx"]
    session = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
    sample = model.metadata["sample"]
    row = np.array([[sample["input"][f] for f in model.metadata["input"]["features"]]], np.float32)
    labels, probabilities = session.run(
        [io["label_output"], io["probabilities_output"]], {io["input_name"]: row}
    )
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (1, len(model.classes))
    assert (
        model.classes[int(probabilities[0].argmax())] == str(labels[0]) == sample["expected_class"]
    )


def test_unknown_models_and_versions_are_not_found(registered, session_models_home):
    version = registered["ticket_classifier"].version
    with pytest.raises(ModelNotFoundError):
        get_model("no_such_model", home=session_models_home)
    with pytest.raises(ModelNotFoundError):
        get_model("ticket_classifier", "0" * 16, home=session_models_home)
    with pytest.raises(ModelNotFoundError):  # BentoML would resolve the prefix; we do not
        get_model("ticket_classifier", version[:6], home=session_models_home)
    with pytest.raises(ModelNotFoundError, match="not a valid model name"):
        get_model("Ticket Classifier", home=session_models_home)
    assert list_models("Ticket Classifier", home=session_models_home) == []


def test_newest_version_comes_first_and_is_latest(candidates, tmp_path):
    candidate = candidates["risk_scorer"]
    for version in ("older", "newer"):
        register_model(
            "risk_scorer",
            version,
            candidate.artifact.model,
            labels=candidate.labels,
            metadata=candidate.metadata,
            home=tmp_path,
        )
    assert [m.version for m in list_models(home=tmp_path)] == ["newer", "older"]
    assert get_model("risk_scorer", home=tmp_path).version == "newer"
    with pytest.raises(FileExistsError):
        register_model(
            "risk_scorer",
            "older",
            candidate.artifact.model,
            labels=candidate.labels,
            metadata=candidate.metadata,
            home=tmp_path,
        )


def test_the_version_is_derived_from_the_data_preprocessing_and_frameworks(registered):
    recipe = RECIPES["risk_scorer"]
    version = planned_version(recipe, recipe.make_dataset())
    assert version == registered["risk_scorer"].version
    assert planned_version(recipe, recipe.make_dataset()) == version
    assert planned_version(recipe, risk_dataset(seed=1)) != version
    bumped = dataclasses.replace(recipe, preprocessing_version="standard-scaler.v2")
    assert planned_version(bumped, recipe.make_dataset()) != version
    tuned = dataclasses.replace(recipe, hyperparameters={**recipe.hyperparameters, "C": 0.5})
    assert planned_version(tuned, recipe.make_dataset()) != version


def test_rebuilding_unchanged_inputs_is_up_to_date(registered, models_home):
    outcomes = build_all(home=models_home)
    assert [(o.name, o.status) for o in outcomes] == [(n, "up_to_date") for n in RECIPES]
    assert {o.name: o.version for o in outcomes} == {n: m.version for n, m in registered.items()}
    assert len(list_models(home=models_home)) == 2


def test_force_rebuilds_the_same_version_as_the_newest(registered, models_home):
    (outcome,) = build_all(["risk_scorer"], force=True, home=models_home)
    before = registered["risk_scorer"]
    assert outcome.status == "built"
    assert outcome.version == before.version
    rebuilt = get_model("risk_scorer", home=models_home)
    assert rebuilt.created_at > before.created_at
    assert rebuilt.metadata["snapshot_id"] == before.metadata["snapshot_id"]
    assert rebuilt.metadata["evaluation"] == before.metadata["evaluation"]
    assert [m.version for m in list_models("risk_scorer", home=models_home)] == [before.version]


def test_without_home_the_registry_follows_the_settings(registered, session_models_home, tmp_path):
    """A fresh process: BENTOML_HOME unset, the store comes from SERVEWATCH_MODELS_HOME."""
    env = {k: v for k, v in os.environ.items() if k != "BENTOML_HOME"}
    env |= {"SERVEWATCH_MODELS_HOME": str(session_models_home), "SERVEWATCH_HOME": str(tmp_path)}
    code = (
        "import json, os\n"
        "from service.models.registry import get_model\n"
        "model = get_model('ticket_classifier')\n"
        "print(json.dumps([model.version, str(model.path), os.environ['BENTOML_HOME']]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    version, path, bentoml_home = json.loads(result.stdout.decode().splitlines()[-1])
    assert version == registered["ticket_classifier"].version
    assert Path(path) == registered["ticket_classifier"].path
    assert Path(bentoml_home) == session_models_home.resolve()


def test_an_older_registered_version_is_up_to_date_but_not_latest(candidates, models_home):
    candidate = candidates["risk_scorer"]
    register_model(
        "risk_scorer",
        "newer",
        candidate.artifact.model,
        labels=candidate.labels,
        metadata=candidate.metadata,
        home=models_home,
    )
    (outcome,) = build_all(["risk_scorer"], home=models_home)
    assert outcome.status == "up_to_date"
    assert outcome.version == candidate.version
    assert not outcome.latest
    (rebuilt,) = build_all(["risk_scorer"], force=True, home=models_home)
    assert rebuilt.latest
    assert get_model("risk_scorer", home=models_home).version == candidate.version


def test_an_empty_home_has_no_models_and_reading_it_creates_nothing(tmp_path):
    home = tmp_path / "nothing-here"
    assert list_models(home=home) == []
    with pytest.raises(ModelNotFoundError):
        get_model("ticket_classifier", home=home)
    assert not home.exists()
