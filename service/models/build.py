"""Build a model: data, training, ONNX export, parity, evaluation, registration.

Versions are derived from the data's snapshot id, the preprocessing version, the framework
versions and the training settings, so rebuilding unchanged inputs is a no-op ("up to date").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from service.models.datasets import Dataset
from service.models.evaluation import evaluate
from service.models.onnx_export import TARGET_OPSET, OnnxArtifact, export_pipeline, run_onnx
from service.models.parity import PARITY_TOLERANCE, ParityReport, compare_probabilities
from service.models.recipes import RECIPES, ModelRecipe, recipe
from service.models.registry import RegisteredModel, get_model, has_version, register_model
from service.models.versioning import framework_versions, version_tag

BuildStatus = Literal["built", "up_to_date"]
# (model name, step) as a build moves on; for progress displays.
StepCallback = Callable[[str, str], None]
STEPS: tuple[str, ...] = ("data", "train", "export", "parity", "evaluate", "register")
# A readiness sample must not look like personal data (it is logged and shown).
_PERSONAL = re.compile(r"@|\+?\d[\d ()-]{7,}\d")
_SAMPLE_MAX_CHARS = 200
# The golden set: this many validation rows per class (fewer where a class has fewer), drawn
# with a fixed seed from the rows fit to show, whatever the model answers for them.
GOLDEN_PER_CLASS = 8
GOLDEN_SEED = 18


@dataclass(frozen=True)
class Candidate:
    """A trained, exported and checked model, ready to be registered."""

    recipe: ModelRecipe
    dataset: Dataset
    pipeline: Any
    artifact: OnnxArtifact
    parity: ParityReport
    version: str
    labels: dict[str, str]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class BuildOutcome:
    name: str
    version: str
    status: BuildStatus
    seconds: float
    model: RegisteredModel
    # False when this version was registered before but a newer one is `latest` now.
    latest: bool = True


def build_all(
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    home: Path | str | None = None,
    on_step: StepCallback | None = None,
) -> list[BuildOutcome]:
    """Build `names` (default: every model) into the store at `home` (see registry.resolve_home)."""
    return [
        build_model(recipe(name), force=force, home=home, on_step=on_step)
        for name in (names or RECIPES)
    ]


def build_model(
    model_recipe: ModelRecipe,
    *,
    force: bool = False,
    home: Path | str | None = None,
    on_step: StepCallback | None = None,
) -> BuildOutcome:
    """Build one model unless its deterministic version is registered already (or `force`)."""
    started = time.perf_counter()
    step = _stepper(model_recipe.name, on_step)
    step("data")
    dataset = model_recipe.make_dataset()
    version = planned_version(model_recipe, dataset)
    if not force and has_version(model_recipe.name, version, home=home):
        model = get_model(model_recipe.name, version, home=home)
        latest = get_model(model_recipe.name, home=home).version == version
        seconds = time.perf_counter() - started
        return BuildOutcome(model.name, version, "up_to_date", seconds, model, latest)
    candidate = train_candidate(model_recipe, dataset, on_step=on_step)
    step("register")
    model = register_model(
        candidate.recipe.name,
        candidate.version,
        candidate.artifact.model,
        labels=candidate.labels,
        metadata=candidate.metadata,
        home=home,
        replace=force,
    )
    return BuildOutcome(model.name, model.version, "built", time.perf_counter() - started, model)


def planned_version(model_recipe: ModelRecipe, dataset: Dataset) -> str:
    """The version a build of `dataset` with this recipe and these frameworks gets."""
    return version_tag(
        model_recipe.name,
        dataset.snapshot_id,
        model_recipe.preprocessing_version,
        _frameworks(),
        model_recipe.hyperparameters,
    )


def train_candidate(
    model_recipe: ModelRecipe,
    dataset: Dataset | None = None,
    *,
    on_step: StepCallback | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> Candidate:
    """Train, export and check a model; ParityError if ONNX Runtime disagrees."""
    step = _stepper(model_recipe.name, on_step)
    dataset = dataset if dataset is not None else model_recipe.make_dataset()
    step("train")
    pipeline = model_recipe.fit(dataset)
    classes = [str(c) for c in pipeline.classes_]
    step("export")
    artifact = export_pipeline(pipeline, dataset.kind, len(dataset.features))
    step("parity")
    inputs = dataset.validation_inputs
    _labels, onnx_probabilities = run_onnx(artifact, dataset.onnx_input(inputs))
    parity = compare_probabilities(
        pipeline.predict_proba(dataset.model_input(inputs)),
        onnx_probabilities,
        inputs,
        classes,
        model_name=model_recipe.name,
        tolerance=tolerance,
    )
    step("evaluate")
    # The served artifact is what the report describes: evaluate ONNX Runtime's output.
    reference = None
    if dataset.reference_inputs:
        _labels, reference = run_onnx(artifact, dataset.onnx_input(dataset.reference_inputs))
    evaluation = evaluate(dataset.validation_labels, onnx_probabilities, classes, reference)
    frameworks = _frameworks()
    version = planned_version(model_recipe, dataset)
    metadata = {
        "classes": classes,
        "input": _input_spec(dataset),
        "onnx": artifact.io_metadata(),
        "snapshot_id": dataset.snapshot_id,
        "preprocessing_version": model_recipe.preprocessing_version,
        "frameworks": frameworks,
        "evaluation": evaluation,
        "sample": choose_sample(dataset, onnx_probabilities, classes),
        "golden": choose_golden(dataset, onnx_probabilities, classes),
        "parity": parity.as_metadata(),
        "training": {
            "dataset": dict(dataset.source),
            "n_train": len(dataset.train_labels),
            "hyperparameters": dict(model_recipe.hyperparameters),
        },
    }
    labels_ = {
        "owner": "servewatch",
        "task": model_recipe.task,
        "input_kind": dataset.kind,
        "preprocessing_version": model_recipe.preprocessing_version,
        "snapshot": dataset.snapshot_id[:12],
    }
    return Candidate(model_recipe, dataset, pipeline, artifact, parity, version, labels_, metadata)


def choose_sample(
    dataset: Dataset, probabilities: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """The most confidently and correctly predicted validation row: the readiness check's input."""
    confidence = probabilities.max(axis=1)
    predicted = probabilities.argmax(axis=1)
    best: int | None = None
    for i, (value, label) in enumerate(
        zip(dataset.validation_inputs, dataset.validation_labels, strict=True)
    ):
        if classes[predicted[i]] != label or not _presentable(value):
            continue
        if best is None or confidence[i] > confidence[best]:
            best = i
    if best is None:
        raise ValueError("no validation row is predicted correctly: the model is useless")
    return {
        "input": _stored_input(dataset, best),
        "expected_class": dataset.validation_labels[best],
    }


def choose_golden(
    dataset: Dataset, probabilities: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """The golden set: validation rows stratified by true class, each with its true class and
    this model's own answer (class and confidence) as built, for `servewatch release check`.

    Rows are drawn without looking at the model's answers, so a model that learnt little gets
    many of its golden cases wrong and is refused, not a set of its lucky guesses.
    """
    rng = np.random.default_rng(GOLDEN_SEED)
    labels = list(dataset.validation_labels)
    cases = []
    for cls in classes:
        rows = [
            i
            for i, label in enumerate(labels)
            if label == cls and _presentable(dataset.validation_inputs[i])
        ]
        chosen = sorted(rng.permutation(rows)[:GOLDEN_PER_CLASS].tolist()) if rows else []
        for i in chosen:
            best = int(probabilities[i].argmax())
            cases.append(
                {
                    "input": _stored_input(dataset, i),
                    "expected_class": cls,
                    "built_class": classes[best],
                    "confidence": round(float(probabilities[i][best]), 6),
                }
            )
    return {"cases": cases}


def _stored_input(dataset: Dataset, row: int) -> Any:
    """Validation row `row` as a request carries it (tabular: a feature map)."""
    value = dataset.validation_inputs[row]
    if dataset.kind == "tabular":
        return {name: float(v) for name, v in zip(dataset.features, value, strict=True)}
    return value


def _presentable(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    return len(value) <= _SAMPLE_MAX_CHARS and not _PERSONAL.search(value)


def _input_spec(dataset: Dataset) -> dict[str, Any]:
    if dataset.kind == "text":
        return {"kind": "text"}
    return {"kind": "tabular", "features": list(dataset.features)}


def _frameworks() -> dict[str, Any]:
    return framework_versions(TARGET_OPSET)


def _stepper(name: str, on_step: StepCallback | None) -> Callable[[str], None]:
    def step(description: str) -> None:
        if on_step is not None:
            on_step(name, description)

    return step
