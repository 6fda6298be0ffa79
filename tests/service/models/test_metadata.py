"""Registration refuses metadata that lacks a required key, naming every missing one."""

from __future__ import annotations

import copy

import pytest

from service.models.metadata import REQUIRED, MetadataError, missing_keys, validate_metadata
from service.models.registry import has_version, register_model


def _without(metadata: dict, *paths: str) -> dict:
    stripped = copy.deepcopy(metadata)
    for path in paths:
        *parents, leaf = path.split(".")
        node = stripped
        for key in parents:
            node = node[key]
        del node[leaf]
    return stripped


def test_complete_metadata_passes(candidates):
    for candidate in candidates.values():
        assert validate_metadata(candidate.metadata) == candidate.metadata
        assert missing_keys(candidate.metadata) == []


def test_every_missing_key_is_named(candidates):
    metadata = _without(
        candidates["ticket_classifier"].metadata,
        "snapshot_id",
        "frameworks.onnxruntime",
        "evaluation.calibration.brier",
        "evaluation.reference.class_shares",
    )
    with pytest.raises(MetadataError) as refused:
        validate_metadata(metadata)
    assert refused.value.missing == [
        "snapshot_id",
        "frameworks.onnxruntime",
        "evaluation.calibration.brier",
        "evaluation.reference.class_shares",
    ]
    for path in refused.value.missing:
        assert path in str(refused.value)


def test_a_missing_block_names_the_keys_below_it(candidates):
    metadata = copy.deepcopy(candidates["risk_scorer"].metadata)
    metadata["onnx"] = "model.onnx"
    del metadata["evaluation"]
    with pytest.raises(MetadataError) as refused:
        validate_metadata(metadata)
    assert "onnx.input_name" in refused.value.missing
    assert "onnx.opset" in refused.value.missing
    assert "evaluation" in refused.value.missing


def test_a_tabular_model_must_name_its_features(candidates):
    metadata = _without(candidates["risk_scorer"].metadata, "input.features")
    with pytest.raises(MetadataError, match=r"missing input\.features"):
        validate_metadata(metadata)


def test_null_counts_as_missing(candidates):
    metadata = copy.deepcopy(candidates["ticket_classifier"].metadata)
    metadata["preprocessing_version"] = None
    with pytest.raises(MetadataError, match="missing preprocessing_version"):
        validate_metadata(metadata)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda m: m["evaluation"]["reference"]["confidence_histogram"]["counts"].pop(), "counts"),
        (lambda m: m["evaluation"]["reference"].update(n=1), "evaluation.reference"),
        (lambda m: m.update(snapshot_id="not-a-hash"), "snapshot_id"),
        (lambda m: m["sample"].update(expected_class="urgent"), "sample.expected_class"),
        (lambda m: m["input"].update(kind="image"), "input.kind"),
        (lambda m: m["evaluation"].update(accuracy=1.5), "evaluation.accuracy"),
        (lambda m: m["evaluation"]["reference"]["confidence_quantile_edges"].reverse(), "quantile"),
    ],
)
def test_inconsistent_values_are_refused(candidates, change, named):
    metadata = copy.deepcopy(candidates["ticket_classifier"].metadata)
    change(metadata)
    with pytest.raises(MetadataError, match="invalid") as refused:
        validate_metadata(metadata)
    assert any(named in problem for problem in refused.value.invalid)


def test_the_tabular_sample_must_give_every_feature(candidates):
    metadata = copy.deepcopy(candidates["risk_scorer"].metadata)
    metadata["sample"]["input"].pop("country_risk")
    with pytest.raises(MetadataError, match=r"sample\.input"):
        validate_metadata(metadata)


def test_registration_with_missing_metadata_is_refused_and_stores_nothing(candidates, tmp_path):
    candidate = candidates["risk_scorer"]
    metadata = _without(candidate.metadata, "evaluation.reference", "sample")
    with pytest.raises(MetadataError) as refused:
        register_model(
            "risk_scorer",
            candidate.version,
            candidate.artifact.model,
            labels=candidate.labels,
            metadata=metadata,
            home=tmp_path,
        )
    message = str(refused.value)
    assert message.startswith(f"risk_scorer:{candidate.version} metadata refused: missing")
    assert "evaluation.reference" in message
    assert "sample" in message
    assert not has_version("risk_scorer", candidate.version, home=tmp_path)


def test_required_keys_cover_the_contract():
    assert set(REQUIRED) == {
        "classes", "input", "onnx", "snapshot_id", "preprocessing_version", "frameworks",
        "evaluation", "sample",
    }  # fmt: skip


def test_a_golden_set_is_optional_but_checked_when_present(candidates):
    metadata = candidates["risk_scorer"].metadata
    assert validate_metadata(_without(metadata, "golden"))  # built before golden sets
    broken = copy.deepcopy(metadata)
    broken["golden"]["cases"][3]["built_class"] = "nope"
    broken["golden"]["cases"][3]["input"] = {"x": 1.0}
    with pytest.raises(MetadataError) as refused:
        validate_metadata(broken)
    assert refused.value.invalid == [
        "golden.cases[3].input: must map every feature to a number",
        "golden.cases[3].built_class: must be one of classes",
    ]
    empty = {**copy.deepcopy(metadata), "golden": {"cases": []}}
    with pytest.raises(MetadataError, match=r"golden.cases: must be a non-empty list"):
        validate_metadata(empty)
