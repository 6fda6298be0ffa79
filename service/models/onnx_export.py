"""Export fitted pipelines to ONNX (probabilities as a plain float tensor) and run them on CPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TARGET_OPSET = 17
INPUT_NAME = "input"
# skl2onnx's TfidfVectorizer converter defaults to en_US.UTF-8, which minimal machines lack.
TEXT_LOCALE = "C.UTF-8"


@dataclass(frozen=True)
class OnnxArtifact:
    """A serialized ONNX model and the names of its input and outputs."""

    model: bytes
    input_name: str
    label_output: str
    probabilities_output: str
    opset: int

    def io_metadata(self) -> dict[str, Any]:
        """The `onnx` block of the registry metadata."""
        return {
            "input_name": self.input_name,
            "label_output": self.label_output,
            "probabilities_output": self.probabilities_output,
            "opset": self.opset,
        }


def export_pipeline(pipeline: Any, kind: str, n_features: int = 0) -> OnnxArtifact:
    """Convert a text ([N, 1] strings) or tabular ([N, n_features] float32) pipeline."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    classifier = pipeline.steps[-1][1]
    options: dict[int, dict[str, Any]] = {id(classifier): {"zipmap": False}}
    if kind == "text":
        input_type: Any = StringTensorType([None, 1])
        options[id(pipeline.steps[0][1])] = {"locale": TEXT_LOCALE}
    else:
        input_type = FloatTensorType([None, n_features])
    proto = to_onnx(
        pipeline,
        initial_types=[(INPUT_NAME, input_type)],
        options=options,
        target_opset=TARGET_OPSET,
    )
    label_output, probabilities_output = (output.name for output in proto.graph.output)
    return OnnxArtifact(
        model=proto.SerializeToString(),
        input_name=INPUT_NAME,
        label_output=label_output,
        probabilities_output=probabilities_output,
        opset=TARGET_OPSET,
    )


def run_onnx(artifact: OnnxArtifact, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) from ONNX Runtime on the CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(artifact.model, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(
        [artifact.label_output, artifact.probabilities_output], {artifact.input_name: tensor}
    )
    return np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
