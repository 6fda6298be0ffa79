"""The registry's required model metadata, and the check that refuses incomplete metadata."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

# Required keys as a tree: a mapping lists the keys required below it, None marks a leaf.
REQUIRED: Mapping[str, Any] = {
    "classes": None,
    "input": {"kind": None},
    "onnx": {"input_name": None, "label_output": None, "probabilities_output": None, "opset": None},
    "snapshot_id": None,
    "preprocessing_version": None,
    "frameworks": {"scikit-learn": None, "skl2onnx": None, "onnx_opset": None, "onnxruntime": None},
    "evaluation": {
        "accuracy": None,
        "macro_f1": None,
        "calibration": {"ece": None, "brier": None},
        "n_validation": None,
        "reference": {
            "n": None,
            "confidence_histogram": {"edges": None, "counts": None},
            "confidence_quantile_edges": None,
            "class_counts": None,
            "class_shares": None,
            "mean_confidence": None,
        },
    },
    "sample": {"input": None, "expected_class": None},
}
HISTOGRAM_BINS = 200
QUANTILE_EDGES = 11
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MetadataError(ValueError):
    """Model metadata lacks required keys or has invalid values; the message names them."""

    def __init__(self, missing: list[str], invalid: list[str], subject: str = "model") -> None:
        self.missing = missing
        self.invalid = invalid
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if invalid:
            parts.append("invalid " + "; ".join(invalid))
        super().__init__(f"{subject} metadata refused: " + "; ".join(parts))


def validate_metadata(metadata: Mapping[str, Any], subject: str = "model") -> dict[str, Any]:
    """`metadata` as a dict if complete and consistent, else MetadataError naming what is wrong."""
    if not isinstance(metadata, Mapping):
        raise MetadataError(
            [], [f"metadata is a {type(metadata).__name__}, not a mapping"], subject
        )
    missing = missing_keys(metadata)
    spec = metadata.get("input")
    if isinstance(spec, Mapping) and spec.get("kind") == "tabular" and spec.get("features") is None:
        missing.append("input.features")
    if missing:
        raise MetadataError(missing, [], subject)
    invalid = _invalid_values(metadata)
    if invalid:
        raise MetadataError([], invalid, subject)
    return dict(metadata)


def missing_keys(
    metadata: Mapping[str, Any], required: Mapping[str, Any] = REQUIRED, prefix: str = ""
) -> list[str]:
    """Dotted paths of the required keys that `metadata` lacks (or holds as null)."""
    missing = []
    for key, below in required.items():
        path = f"{prefix}{key}"
        value = metadata.get(key) if isinstance(metadata, Mapping) else None
        if value is None:
            missing.append(path)
        elif below is not None:
            if isinstance(value, Mapping):
                missing.extend(missing_keys(value, below, f"{path}."))
            else:
                missing.extend(f"{path}.{leaf}" for leaf in _leaves(below))
    return missing


def _leaves(required: Mapping[str, Any], prefix: str = "") -> list[str]:
    leaves = []
    for key, below in required.items():
        path = f"{prefix}{key}"
        leaves.extend(_leaves(below, f"{path}.") if below is not None else [path])
    return leaves


def _invalid_values(m: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    classes = m["classes"]
    if not _str_list(classes) or len(set(classes)) != len(classes) or len(classes) < 2:
        problems.append("classes: must be 2 or more distinct strings")
        classes = []
    problems += _check_input(m["input"])
    problems += _check_onnx(m["onnx"])
    if not isinstance(m["snapshot_id"], str) or not _SHA256.fullmatch(m["snapshot_id"]):
        problems.append("snapshot_id: must be a sha256 hex digest")
    if not isinstance(m["preprocessing_version"], str) or not m["preprocessing_version"]:
        problems.append("preprocessing_version: must be a non-empty string")
    problems += _check_frameworks(m["frameworks"])
    problems += _check_evaluation(m["evaluation"], classes)
    problems += _check_sample(m["sample"], m["input"], classes)
    # Optional: versions built before golden sets existed still serve (release check refuses).
    if m.get("golden") is not None:
        problems += _check_golden(m["golden"], m["input"], classes)
    return problems


def _check_input(spec: Any) -> list[str]:
    kind = spec.get("kind")
    if kind == "text":
        return []
    if kind == "tabular":
        features = spec.get("features")
        if not _str_list(features) or not features or len(set(features)) != len(features):
            return ["input.features: must be a non-empty list of distinct names"]
        return []
    return [f"input.kind: must be 'text' or 'tabular', not {kind!r}"]


def _check_onnx(onnx: Mapping[str, Any]) -> list[str]:
    names = ("input_name", "label_output", "probabilities_output")
    problems = [f"onnx.{n}: must be a non-empty string" for n in names if not _text(onnx[n])]
    if not _int(onnx["opset"]) or onnx["opset"] < 1:
        problems.append("onnx.opset: must be a positive integer")
    return problems


def _check_frameworks(frameworks: Mapping[str, Any]) -> list[str]:
    names = ("scikit-learn", "skl2onnx", "onnxruntime")
    problems = [
        f"frameworks.{n}: must be a version string" for n in names if not _text(frameworks[n])
    ]
    if not _int(frameworks["onnx_opset"]):
        problems.append("frameworks.onnx_opset: must be an integer")
    return problems


def _check_evaluation(evaluation: Mapping[str, Any], classes: list[str]) -> list[str]:
    problems = []
    for path, value in (
        ("accuracy", evaluation["accuracy"]),
        ("macro_f1", evaluation["macro_f1"]),
        ("calibration.ece", evaluation["calibration"]["ece"]),
    ):
        if not _number(value) or not 0 <= value <= 1:
            problems.append(f"evaluation.{path}: must be a number in [0, 1]")
    brier = evaluation["calibration"]["brier"]
    if not _number(brier) or not 0 <= brier <= 2:
        problems.append("evaluation.calibration.brier: must be a number in [0, 2]")
    if not _int(evaluation["n_validation"]) or evaluation["n_validation"] < 1:
        problems.append("evaluation.n_validation: must be a positive integer")
    return problems + _check_reference(evaluation["reference"], classes)


def _check_reference(reference: Mapping[str, Any], classes: list[str]) -> list[str]:
    n = reference["n"]
    if not _int(n) or n < 1:
        return [f"{_REFERENCE}.n: must be a positive integer"]
    return [
        *_check_histogram(reference["confidence_histogram"], n),
        *_check_quantiles(reference["confidence_quantile_edges"]),
        *_check_classes(reference["class_counts"], reference["class_shares"], classes, n),
        *_check_mean(reference["mean_confidence"]),
    ]


_REFERENCE = "evaluation.reference"


def _check_histogram(histogram: Mapping[str, Any], n: int) -> list[str]:
    where = f"{_REFERENCE}.confidence_histogram"
    edges, counts = histogram["edges"], histogram["counts"]
    expected_edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)]
    problems = []
    if (
        not _number_list(edges)
        or len(edges) != HISTOGRAM_BINS + 1
        or any(
            not math.isclose(e, x, abs_tol=1e-9) for e, x in zip(edges, expected_edges, strict=True)
        )
    ):
        problems.append(f"{where}.edges: must be 0.0..1.0 in steps of 0.005")
    if (
        not isinstance(counts, list)
        or len(counts) != HISTOGRAM_BINS
        or not all(_int(c) and c >= 0 for c in counts)
    ):
        problems.append(f"{where}.counts: must be {HISTOGRAM_BINS} counts")
    elif sum(counts) != n:
        problems.append(f"{where}.counts: sum {sum(counts)} is not n={n}")
    return problems


def _check_quantiles(quantiles: Any) -> list[str]:
    if (
        not _number_list(quantiles)
        or len(quantiles) != QUANTILE_EDGES
        or quantiles[0] != 0.0
        or quantiles[-1] != 1.0
        or any(b < a for a, b in itertools.pairwise(quantiles))
    ):
        return [f"{_REFERENCE}.confidence_quantile_edges: must be 0.0, 9 sorted deciles, 1.0"]
    return []


def _check_classes(class_counts: Any, shares: Any, classes: list[str], n: int) -> list[str]:
    problems = []
    if not isinstance(class_counts, Mapping) or set(class_counts) != set(classes):
        problems.append(f"{_REFERENCE}.class_counts: must have one count per class")
    elif sum(class_counts.values()) != n:
        problems.append(f"{_REFERENCE}.class_counts: sum is not n={n}")
    if not isinstance(shares, Mapping) or set(shares) != set(classes):
        problems.append(f"{_REFERENCE}.class_shares: must have one share per class")
    elif not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6):
        problems.append(f"{_REFERENCE}.class_shares: must sum to 1")
    return problems


def _check_mean(mean: Any) -> list[str]:
    if not _number(mean) or not 0 <= mean <= 1:
        return [f"{_REFERENCE}.mean_confidence: must be a number in [0, 1]"]
    return []


def _check_sample(
    sample: Mapping[str, Any], spec: Mapping[str, Any], classes: list[str]
) -> list[str]:
    problems = []
    value = sample["input"]
    if spec.get("kind") == "text" and not _text(value):
        problems.append("sample.input: must be a ticket text")
    if spec.get("kind") == "tabular" and (
        not isinstance(value, Mapping)
        or set(value) != set(spec.get("features") or ())
        or not all(_number(v) for v in value.values())
    ):
        problems.append("sample.input: must map every feature to a number")
    if sample["expected_class"] not in classes:
        problems.append("sample.expected_class: must be one of classes")
    return problems


def _check_golden(golden: Any, spec: Mapping[str, Any], classes: list[str]) -> list[str]:
    cases = golden.get("cases") if isinstance(golden, Mapping) else None
    if not isinstance(cases, list) or not cases:
        return ["golden.cases: must be a non-empty list"]
    for i, case in enumerate(cases):
        where = f"golden.cases[{i}]"
        if not isinstance(case, Mapping) or not {
            "input",
            "expected_class",
            "built_class",
            "confidence",
        } <= set(case):
            return [f"{where}: must hold input, expected_class, built_class and confidence"]
        problems = [p.replace("sample.", f"{where}.") for p in _check_sample(case, spec, classes)]
        if case["built_class"] not in classes:
            problems.append(f"{where}.built_class: must be one of classes")
        if not _number(case["confidence"]) or not 0 <= case["confidence"] <= 1:
            problems.append(f"{where}.confidence: must be a number in [0, 1]")
        if problems:
            return problems
    return []


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _number_list(value: Any) -> bool:
    return isinstance(value, list) and all(_number(v) for v in value)
