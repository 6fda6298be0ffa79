"""The golden set on the serving path: a model's stored golden cases scored through the
serving runtime (or answered by a running service), and judged.

A case passes when its answer reproduces the build's answer (same class, confidence within the
tolerance) and keeps the output schema; the set passes when every case does and the share of
cases answered with their true class is at least the configured minimum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.runtime import InputMismatch, ItemResult, LoadedModel

BATCH_SIZE = 16
EXCERPT_CHARS = 60


class GoldenSetMissing(LookupError):
    """The model version was built before golden sets were stored."""


@dataclass(frozen=True)
class GoldenCase:
    """One stored case: the input, its true class, and the model's own answer at build time."""

    input: Any
    expected_class: str
    built_class: str
    confidence: float

    @property
    def excerpt(self) -> str:
        """The input, shortened for a report line."""
        if isinstance(self.input, Mapping):
            text = ", ".join(f"{k}={v:.3g}" for k, v in list(self.input.items())[:4])
            return text + (", ..." if len(self.input) > 4 else "")
        text = " ".join(str(self.input).split())
        return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def golden_cases(metadata: Mapping[str, Any]) -> list[GoldenCase]:
    """The golden cases stored in a model's metadata (GoldenSetMissing when there are none)."""
    golden = metadata.get("golden")
    if not golden:
        raise GoldenSetMissing(
            "no golden set stored: rebuild it (`servewatch models build --force`)"
        )
    return [
        GoldenCase(c["input"], c["expected_class"], c["built_class"], float(c["confidence"]))
        for c in golden["cases"]
    ]


@dataclass(frozen=True)
class CaseVerdict:
    """One case's answer: the class and confidence got (None on a failure) and why it failed."""

    case: GoldenCase
    got_class: str | None
    got_confidence: float | None
    problem: str | None  # None: reproduced the build's answer

    @property
    def correct(self) -> bool:
        return self.got_class == self.case.expected_class

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.case.excerpt,
            "expected_class": self.case.expected_class,
            "built": {"class": self.case.built_class, "confidence": self.case.confidence},
            "got": {"class": self.got_class, "confidence": self.got_confidence},
            "problem": self.problem,
        }


@dataclass(frozen=True)
class GoldenVerdict:
    """A model version's golden set, judged."""

    model: str
    version: str
    cases: list[CaseVerdict]
    min_accuracy: float

    @property
    def accuracy(self) -> float:
        return sum(v.correct for v in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def passed(self) -> bool:
        reproduced = all(v.problem is None for v in self.cases)
        return bool(self.cases) and reproduced and self.accuracy >= self.min_accuracy

    @property
    def failing(self) -> list[CaseVerdict]:
        """Cases that did not reproduce, and (when accuracy is below the minimum) wrong ones."""
        low = self.accuracy < self.min_accuracy
        return [v for v in self.cases if v.problem is not None or (low and not v.correct)]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "passed": self.passed,
            "cases": len(self.cases),
            "accuracy": round(self.accuracy, 4),
            "min_accuracy": self.min_accuracy,
            "failing": [v.as_json() for v in self.failing],
        }


def judge_case(
    case: GoldenCase, result: ItemResult, *, tolerance: float, reproduce: bool = True
) -> CaseVerdict:
    """Judge one answer; `reproduce` off (an answer by another version) checks the schema only."""
    got = CaseVerdict(case, result.predicted_class, result.confidence, None)
    if result.failure is not None:
        return CaseVerdict(case, None, None, f"output broke the output schema ({result.failure})")
    if not reproduce:
        return got
    if result.predicted_class != case.built_class:
        return CaseVerdict(case, got.got_class, got.got_confidence, "class differs from the build")
    assert result.confidence is not None  # a schema-valid answer has its confidence
    if abs(result.confidence - case.confidence) > tolerance:
        problem = f"confidence outside {case.confidence:.3f} ± {tolerance:g}"
        return CaseVerdict(case, got.got_class, got.got_confidence, problem)
    return got


def failed_case(case: GoldenCase, problem: str) -> CaseVerdict:
    """A case that got no answer at all (an input the model refuses, an HTTP error)."""
    return CaseVerdict(case, None, None, problem)


def score_in_process(model: LoadedModel, cases: Sequence[GoldenCase]) -> list[ItemResult | str]:
    """Each case's result through the worker's own code (prepare, batched predict, output
    schema), or the reason it could not be scored."""
    results: list[ItemResult | str] = []
    for start in range(0, len(cases), BATCH_SIZE):
        refused: dict[int, str] = {}
        prepared: list[Any] = []
        for i, case in enumerate(cases[start : start + BATCH_SIZE]):
            try:
                prepared.append(model.prepare(case.input))
            except InputMismatch as exc:
                refused[i] = f"input refused: {exc}"
        scored = iter(model.predict(prepared).items if prepared else ())
        count = len(prepared) + len(refused)
        results += [refused[i] if i in refused else next(scored) for i in range(count)]
    return results


def judge_model(model: LoadedModel, *, tolerance: float, min_accuracy: float) -> GoldenVerdict:
    """The golden set of `model` scored in process and judged (GoldenSetMissing without one)."""
    cases = golden_cases(model.registered.metadata)
    verdicts = [
        failed_case(case, result)
        if isinstance(result, str)
        else judge_case(case, result, tolerance=tolerance)
        for case, result in zip(cases, score_in_process(model, cases), strict=True)
    ]
    return GoldenVerdict(model.name, model.version, verdicts, min_accuracy)
