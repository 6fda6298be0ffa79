"""Deterministic model versions: the same data, preprocessing and frameworks give the same tag."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

VERSION_CHARS = 16


def framework_versions(onnx_opset: int) -> dict[str, str | int]:
    """Versions of what shapes the artifact: scikit-learn, skl2onnx, the opset, onnxruntime."""
    return {
        "scikit-learn": _installed("scikit-learn"),
        "skl2onnx": _installed("skl2onnx"),
        "onnx_opset": onnx_opset,
        "onnxruntime": _onnxruntime_version(),
    }


def version_tag(
    name: str,
    snapshot_id: str,
    preprocessing_version: str,
    frameworks: Mapping[str, object],
    hyperparameters: Mapping[str, object] | None = None,
) -> str:
    """A model store version derived from everything that determines the artifact."""
    basis = {
        "name": name,
        "snapshot_id": snapshot_id,
        "preprocessing_version": preprocessing_version,
        "frameworks": dict(frameworks),
        # Training settings too, so that tuning a model never reuses an older version's tag.
        "hyperparameters": dict(hyperparameters or {}),
    }
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()
    return digest[:VERSION_CHARS]


def _installed(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def _onnxruntime_version() -> str:
    # Installed as onnxruntime-gpu or onnxruntime; both import as `onnxruntime`.
    for distribution in ("onnxruntime-gpu", "onnxruntime"):
        found = _installed(distribution)
        if found != "unknown":
            return found
    return "unknown"
