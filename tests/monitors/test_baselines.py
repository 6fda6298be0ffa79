"""Baselines: parsed from model metadata, read from the store's mirror or the model registry."""

import numpy as np
import pytest

from monitors.baselines import Baseline, BaselineError, BaselineStore
from tests.monitors import traffic

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def test_parses_a_reference_and_pins_its_deciles():
    reference = traffic.baseline_reference()
    baseline = Baseline.from_reference("m", "v1", reference)
    assert baseline.confidence.n == reference["n"]
    assert len(baseline.quantile_edges) == 11
    shares = baseline.confidence.on(baseline.quantile_edges).counts / baseline.confidence.n
    assert shares == pytest.approx(np.full(10, 0.1), abs=2e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("confidence_histogram"), "malformed reference"),
        (lambda r: r["confidence_histogram"]["counts"].pop(), "malformed reference"),
        (lambda r: r.update(confidence_quantile_edges=[0.0, 0.9, 0.5, 1.0]), "not sorted"),
        (lambda r: r.update(class_counts={}), "empty reference"),
    ],
)
def test_refuses_malformed_references(change, message):
    reference = traffic.baseline_reference()
    change(reference)
    with pytest.raises(BaselineError, match=message):
        Baseline.from_reference("m", "v1", reference)


def test_reads_the_store_mirror_and_explains_what_is_missing(store_engine):
    traffic.register_baseline(store_engine, "v1")
    store = BaselineStore(store_engine, registry=None)
    assert store.get(traffic.MODEL, "v1").classes == tuple(traffic.CLASSES)
    assert store.get(traffic.MODEL, "v2") is None
    assert store.problems[(traffic.MODEL, "v2")] == "version not registered"
    assert store.registered_versions() == [(traffic.MODEL, "v1")]
    assert store.is_registered(traffic.MODEL)
    assert not store.is_registered("fraud_model")


def _metadata(seed: int = 5) -> dict:
    from service.models.evaluation import evaluate

    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(400, len(traffic.CLASSES))) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = [traffic.CLASSES[i] for i in probabilities.argmax(axis=1)]
    return {
        "classes": traffic.CLASSES,
        "input": {"kind": "text"},
        "onnx": {
            "input_name": "text",
            "label_output": "label",
            "probabilities_output": "probabilities",
            "opset": 17,
        },
        "snapshot_id": "ab" * 32,
        "preprocessing_version": "1",
        "frameworks": {
            "scikit-learn": "1.9",
            "skl2onnx": "1.20",
            "onnx_opset": 17,
            "onnxruntime": "1.31",
        },
        "evaluation": evaluate(labels, probabilities, traffic.CLASSES),
        "sample": {"input": "I was charged twice", "expected_class": "billing"},
    }


@SQLITE_ONLY
def test_falls_back_to_the_model_registry(store_engine, tmp_path, monkeypatch):
    from servewatch.model_registry import (
        registry_has_model,
        registry_metadata,
        registry_versions,
    )
    from service.models.registry import register_model

    home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    metadata = _metadata()
    # The monitors only read the metadata: a stand-in artifact, past registration's check of it
    # (tests/service/models/test_artifact.py checks that the check refuses such bytes).
    monkeypatch.setattr("service.models.registry.check_artifact", lambda *args: None)
    register_model(traffic.MODEL, "v7", b"onnx", labels={}, metadata=metadata, home=home)
    # The lookups the root CLI wires in (monitors do not import service themselves).
    store = BaselineStore(
        store_engine,
        registry=registry_metadata,
        registry_has_model=registry_has_model,
        registry_versions=registry_versions,
    )  # the mirror table is empty
    baseline = store.get(traffic.MODEL, "v7")
    reference = metadata["evaluation"]["reference"]
    assert baseline is not None
    assert baseline.confidence.n == reference["n"]
    assert dict(baseline.class_counts) == reference["class_counts"]
    assert store.get(traffic.MODEL, "v8") is None
    assert store.is_registered(traffic.MODEL)
    # The registry's versions count as registered beside the mirror's.
    assert store.registered_versions(traffic.MODEL) == [(traffic.MODEL, "v7")]
    traffic.register_baseline(store_engine, "v1")
    assert store.registered_versions() == [(traffic.MODEL, "v1"), (traffic.MODEL, "v7")]
    assert store.registered_versions("fraud_model") == []


def test_a_version_registered_later_is_found_by_the_same_store(store_engine):
    store = BaselineStore(store_engine, registry=None)
    assert store.get(traffic.MODEL, "v1") is None
    traffic.register_baseline(store_engine, "v1")
    assert store.get(traffic.MODEL, "v1") is not None
