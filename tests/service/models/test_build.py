"""Trained candidates: quality, ONNX parity (and its failure), evaluation, readiness sample."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

from monitors.baselines import Baseline
from service.models.build import Candidate
from service.models.datasets import REFERENCE_ROWS
from service.models.evaluation import evaluate
from service.models.metadata import validate_metadata
from service.models.onnx_export import OnnxArtifact, run_onnx
from service.models.parity import PARITY_TOLERANCE, ParityError, compare_probabilities


def _onnx_probabilities(candidate: Candidate, artifact: OnnxArtifact | None = None) -> np.ndarray:
    dataset = candidate.dataset
    tensor = dataset.onnx_input(dataset.validation_inputs)
    return run_onnx(artifact or candidate.artifact, tensor)[1]


def _tampered(artifact: OnnxArtifact) -> OnnxArtifact:
    """The artifact with the linear classifier's first intercept shifted by 0.5."""
    proto = onnx.load_from_string(artifact.model)
    (node,) = [n for n in proto.graph.node if n.op_type == "LinearClassifier"]
    (intercepts,) = [a for a in node.attribute if a.name == "intercepts"]
    intercepts.floats[0] += 0.5
    return dataclasses.replace(artifact, model=proto.SerializeToString())


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_onnx_runtime_reproduces_scikit_learn_within_tolerance(candidates, name):
    candidate = candidates[name]
    assert candidate.parity.passed
    assert candidate.parity.n == len(candidate.dataset.validation_inputs)
    assert candidate.parity.max_abs_diff <= PARITY_TOLERANCE
    assert candidate.metadata["parity"]["max_abs_diff"] == candidate.parity.max_abs_diff


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_a_tampered_model_fails_parity_naming_the_worst_row(candidates, name):
    candidate = candidates[name]
    dataset = candidate.dataset
    expected = candidate.pipeline.predict_proba(dataset.model_input(dataset.validation_inputs))
    actual = _onnx_probabilities(candidate, _tampered(candidate.artifact))
    worst = int(np.abs(expected - actual).max(axis=1).argmax())
    with pytest.raises(ParityError) as failure:
        compare_probabilities(
            expected,
            actual,
            dataset.validation_inputs,
            candidate.metadata["classes"],
            model_name=name,
        )
    report = failure.value.report
    assert report is not None
    assert report.worst_row == worst
    assert not report.passed
    message = str(failure.value)
    assert f"worst row {worst}:" in message
    assert name in message
    assert "tolerance 1e-05" in message
    shown = dataset.validation_inputs[worst]
    assert (shown[:40] if isinstance(shown, str) else repr(shown)[:40]) in message


def test_probabilities_of_the_wrong_shape_fail_parity(candidates):
    candidate = candidates["risk_scorer"]
    probabilities = _onnx_probabilities(candidate)
    with pytest.raises(ParityError, match="shape"):
        compare_probabilities(
            probabilities,
            probabilities[:, :2],
            candidate.dataset.validation_inputs,
            candidate.metadata["classes"],
            model_name="risk_scorer",
        )


def test_ticket_classifier_is_good_but_not_perfect_and_not_always_sure(candidates):
    evaluation = candidates["ticket_classifier"].metadata["evaluation"]
    assert 0.85 < evaluation["accuracy"] < 0.99
    assert 0.85 < evaluation["macro_f1"] < 0.99
    quantiles = evaluation["reference"]["confidence_quantile_edges"]
    assert quantiles[1] < 0.85  # the least sure tenth of the tickets
    assert evaluation["calibration"]["ece"] < 0.1


def test_risk_scorer_is_useful_but_not_perfect(candidates):
    evaluation = candidates["risk_scorer"].metadata["evaluation"]
    assert 0.75 < evaluation["accuracy"] < 0.97
    assert evaluation["calibration"]["ece"] < 0.1
    shares = evaluation["reference"]["class_shares"]
    assert shares["low"] > shares["medium"] > shares["high"] > 0


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_the_evaluation_report_agrees_with_scikit_learn_metrics(candidates, name):
    from sklearn.metrics import accuracy_score, brier_score_loss, f1_score

    candidate = candidates[name]
    dataset = candidate.dataset
    classes = candidate.metadata["classes"]
    probabilities = _onnx_probabilities(candidate)
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    evaluation = candidate.metadata["evaluation"]
    assert evaluation["accuracy"] == pytest.approx(
        accuracy_score(dataset.validation_labels, predicted)
    )
    assert evaluation["macro_f1"] == pytest.approx(
        f1_score(dataset.validation_labels, predicted, average="macro")
    )
    onehot = np.array([[label == c for c in classes] for label in dataset.validation_labels])
    per_class_brier = [
        brier_score_loss(onehot[:, i], probabilities[:, i]) for i in range(len(classes))
    ]
    assert evaluation["calibration"]["brier"] == pytest.approx(sum(per_class_brier))


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_reference_distributions_describe_ten_thousand_held_out_predictions(candidates, name):
    candidate = candidates[name]
    dataset = candidate.dataset
    metadata = validate_metadata(candidate.metadata)
    reference = metadata["evaluation"]["reference"]
    tensor = dataset.onnx_input(dataset.reference_inputs)
    confidence = run_onnx(candidate.artifact, tensor)[1].max(axis=1)
    n = len(dataset.reference_inputs)
    assert n >= REFERENCE_ROWS == 10_000
    assert reference["n"] == n
    assert metadata["evaluation"]["n_validation"] == len(dataset.validation_inputs)
    histogram = reference["confidence_histogram"]
    assert len(histogram["edges"]) == 201
    assert len(histogram["counts"]) == 200
    assert histogram["edges"][0] == 0.0
    assert histogram["edges"][-1] == 1.0
    assert sum(histogram["counts"]) == n
    assert histogram["counts"][-1] == int(np.sum(confidence >= 0.995))
    assert reference["confidence_quantile_edges"][5] == pytest.approx(np.median(confidence))
    assert sum(reference["class_counts"].values()) == n
    assert sum(reference["class_shares"].values()) == pytest.approx(1.0)
    assert reference["mean_confidence"] == pytest.approx(confidence.mean())


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_the_reference_rows_are_held_out_from_training_and_validation(candidates, name):
    dataset = candidates[name].dataset
    seen = {repr(value) for value in (*dataset.train_inputs, *dataset.validation_inputs)}
    held_out = [repr(value) for value in dataset.reference_inputs]
    assert dataset.source["reference_rows"] == len(held_out)
    # Generated rows may repeat by chance (short tickets); the draw itself is a separate one.
    assert sum(value in seen for value in held_out) / len(held_out) < 0.01


def test_histogram_bins_are_half_open_and_the_last_is_closed():
    probabilities = np.array([[0.995, 0.005], [1.0, 0.0], [0.5, 0.5], [0.6, 0.4]])
    report = evaluate(["a", "a", "b", "b"], probabilities, ["a", "b"])
    counts = report["reference"]["confidence_histogram"]["counts"]
    assert counts[199] == 2
    assert counts[100] == 1
    assert counts[120] == 1
    assert report["accuracy"] == 0.5
    assert report["reference"]["class_counts"] == {"a": 4, "b": 0}


def test_a_perfectly_sure_and_right_model_is_perfectly_calibrated():
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0]])
    report = evaluate(["a", "b"], probabilities, ["a", "b"])
    assert report["calibration"]["ece"] == 0.0
    assert report["calibration"]["brier"] == 0.0
    assert report["macro_f1"] == 1.0


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_the_readiness_sample_is_predicted_as_expected_by_the_onnx_model(candidates, name):
    candidate = candidates[name]
    sample = candidate.metadata["sample"]
    features = candidate.metadata["input"].get("features")
    value = sample["input"]
    if features:
        tensor = np.array([[value[f] for f in features]], dtype=np.float32)
    else:
        assert "@" not in value
        assert len(value) <= 200
        tensor = np.array([[value]], dtype=object)
    labels, probabilities = run_onnx(candidate.artifact, tensor)
    assert str(labels[0]) == sample["expected_class"]
    assert candidate.metadata["classes"][int(probabilities[0].argmax())] == sample["expected_class"]


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_the_monitors_can_read_the_baseline(candidates, name):
    baseline = Baseline.from_metadata(name, "v", candidates[name].metadata)
    assert baseline.confidence.n == len(candidates[name].dataset.reference_inputs)
    assert set(baseline.class_counts) == set(candidates[name].metadata["classes"])
