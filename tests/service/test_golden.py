"""Golden sets on the serving path: a real registered model, scored through the runtime."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from service.golden import GoldenSetMissing, golden_cases, judge_case, judge_model
from service.runtime import ItemResult, load_model

TOLERANCE = 0.02


def _loaded(registered: Any, golden: Any = "keep") -> Any:
    metadata = copy.deepcopy(registered.metadata)
    if golden != "keep":
        metadata["golden"] = golden
    return load_model(
        replace(registered, metadata=metadata),
        use_cuda=False,
        intra_op_threads=1,
        inter_op_threads=1,
    )


@pytest.mark.parametrize("name", ["ticket_classifier", "risk_scorer"])
def test_a_model_reproduces_its_own_golden_set_through_the_runtime(registered_models, name):
    verdict = judge_model(_loaded(registered_models[name]), tolerance=1e-5, min_accuracy=0.7)
    assert verdict.passed, [v.as_json() for v in verdict.failing]
    assert all(v.problem is None for v in verdict.cases)
    assert verdict.accuracy >= 0.7


def test_a_case_whose_answer_moved_from_the_build_fails_and_says_why(registered_models):
    model = registered_models["ticket_classifier"]
    golden = copy.deepcopy(model.metadata["golden"])
    golden["cases"][0]["confidence"] = max(0.0, golden["cases"][0]["confidence"] - 0.1)
    other = next(c for c in model.classes if c != golden["cases"][1]["built_class"])
    golden["cases"][1]["built_class"] = other
    verdict = judge_model(_loaded(model, golden), tolerance=TOLERANCE, min_accuracy=0.0)
    assert not verdict.passed
    problems = [v.problem for v in verdict.failing]
    assert str(problems[0]).startswith("confidence outside")
    assert problems[1] == "class differs from the build"
    assert len(problems) == 2


def test_a_schema_failure_and_an_answer_by_another_version(registered_models):
    case = golden_cases(registered_models["ticket_classifier"].metadata)[0]
    broken = judge_case(case, ItemResult(None, None, None, "not_normalized"), tolerance=TOLERANCE)
    assert broken.problem == "output broke the output schema (not_normalized)"
    elsewhere = ItemResult(case.expected_class, 0.01, None)
    assert judge_case(case, elsewhere, tolerance=TOLERANCE, reproduce=False).problem is None
    assert judge_case(case, elsewhere, tolerance=TOLERANCE).problem is not None


def test_a_version_built_before_golden_sets_has_none(registered_models):
    with pytest.raises(GoldenSetMissing, match="rebuild"):
        judge_model(
            _loaded(registered_models["risk_scorer"], None), tolerance=TOLERANCE, min_accuracy=0.7
        )
