"""Planning a rollout from the configured routes, against a real model store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.config import AppConfig, ModelRef, RouteConfig
from servewatch.rollout import Scope, parse_model_ref, parse_steps, plan_rollout
from service.models.build import build_model
from service.models.datasets import risk_dataset
from service.models.recipes import recipe
from service.models.registry import get_model
from storage.rollouts import RolloutError


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, object]:
    home = tmp_path_factory.mktemp("plan-models") / "bentoml"
    first = build_model(recipe("risk_scorer"), home=home).version
    other = replace(recipe("risk_scorer"), make_dataset=lambda: risk_dataset(seed=1818))
    second = build_model(other, home=home).version
    return {
        "resolve": lambda name, version: get_model(name, version, home=home).version,
        "first": first,
        "second": second,
    }


def _config(*versions: str) -> AppConfig:
    routes = {
        f"endpoint_{i}": RouteConfig(default=ModelRef(model="risk_scorer", version=version))
        for i, version in enumerate(versions)
    }
    return AppConfig().model_copy(update={"routing": routes})


def test_latest_is_resolved_for_the_baseline_and_the_candidate(store):
    config = _config(store["first"])
    plan = plan_rollout(config, "risk_scorer:latest", (50, 100), store["resolve"], Scope("acme"))
    assert (plan.baseline_version, plan.candidate_version) == (store["first"], store["second"])
    assert (plan.endpoints, plan.steps, plan.tenant, plan.mode) == (
        ("endpoint_0",),
        (50.0, 100.0),
        "acme",
        "hash",
    )


def test_routes_serving_several_versions_are_refused(store):
    config = _config(store["first"], store["second"])
    with pytest.raises(RolloutError, match="several versions"):
        plan_rollout(config, f"risk_scorer:{store['second']}", (100,), store["resolve"])


def test_parse_model_ref_and_steps():
    assert parse_model_ref("risk_scorer:v3") == ("risk_scorer", "v3")
    assert parse_steps("5, 25,50,100") == (5.0, 25.0, 50.0, 100.0)
    for bad in ("risk_scorer", ":v1", "risk_scorer:"):
        with pytest.raises(RolloutError, match="MODEL:VERSION"):
            parse_model_ref(bad)
    with pytest.raises(RolloutError, match="numbers"):
        parse_steps("5,x,100")
