"""The check a model artifact passes before it is registered: ONNX Runtime loads it and its
stored sample input gives the expected class through the serving code path."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any


class ArtifactError(ValueError):
    """A model artifact that cannot serve: it does not load, or its sample gives a wrong answer."""


def check_artifact(name: str, version: str, onnx_model: bytes, metadata: Mapping[str, Any]) -> None:
    """Refuse (ArtifactError) an artifact ONNX Runtime cannot load or whose sample fails."""
    import onnxruntime as ort

    from service.runtime import LoadedModel

    subject = f"{name}:{version}"
    try:
        session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, unexported, exception classes
        raise ArtifactError(
            f"{subject}: ONNX Runtime cannot load the artifact: {_first_line(exc)}"
        ) from exc
    candidate = SimpleNamespace(
        name=name, version=version, classes=list(metadata["classes"]), metadata=metadata
    )
    try:
        problem = LoadedModel(candidate, session).sample_check()
    except Exception as exc:  # a graph whose inputs or outputs are not the metadata's
        problem = f"the sample input cannot be scored: {_first_line(exc)}"
    if problem is not None:
        raise ArtifactError(f"{subject}: {problem}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
