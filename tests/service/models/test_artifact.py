"""Registration checks the artifact: it must load in ONNX Runtime and answer its sample."""

from __future__ import annotations

import copy

import pytest

from service.models.artifact import ArtifactError, check_artifact
from service.models.registry import has_version, register_model


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_a_sound_artifact_passes(candidates, name):
    candidate = candidates[name]
    check_artifact(name, candidate.version, candidate.artifact.model, candidate.metadata)


def test_bytes_that_are_not_onnx_are_refused_and_nothing_is_stored(candidates, tmp_path):
    candidate = candidates["risk_scorer"]
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load the artifact"):
        register_model(
            "risk_scorer",
            candidate.version,
            b"not an onnx model",
            labels=candidate.labels,
            metadata=candidate.metadata,
            home=tmp_path,
        )
    assert not has_version("risk_scorer", candidate.version, home=tmp_path)


def test_an_artifact_whose_sample_gives_another_class_is_refused(candidates, tmp_path):
    candidate = candidates["risk_scorer"]
    metadata = copy.deepcopy(candidate.metadata)
    expected = metadata["sample"]["expected_class"]
    metadata["sample"]["expected_class"] = next(c for c in metadata["classes"] if c != expected)
    with pytest.raises(ArtifactError, match="sample gave"):
        register_model(
            "risk_scorer",
            "wrong-sample",
            candidate.artifact.model,
            labels=candidate.labels,
            metadata=metadata,
            home=tmp_path,
        )
    assert not has_version("risk_scorer", "wrong-sample", home=tmp_path)


def test_another_models_artifact_under_this_metadata_is_refused(candidates, tmp_path):
    risk, tickets = candidates["risk_scorer"], candidates["ticket_classifier"]
    with pytest.raises(ArtifactError, match="risk_scorer:swapped"):
        check_artifact("risk_scorer", "swapped", tickets.artifact.model, risk.metadata)
