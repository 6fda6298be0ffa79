"""Planning a rollout from the configured routes, against a real model store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.config import AppConfig, ModelRef, RouteConfig
from servewatch.rollout import (
    Scope,
    parse_model_ref,
    parse_steps,
    plan_rollout,
    release_rollback_plans,
)
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


def _routes(**routes: RouteConfig) -> AppConfig:
    return AppConfig(routing=routes)


def test_a_release_rollback_goes_live_where_only_default_versions_differ():
    ticket = RouteConfig(default=ModelRef(model="ticket_classifier", version="t1"))
    current = _routes(
        classify_ticket=RouteConfig(default=ModelRef(model="ticket_classifier", version="t2")),
        classify_tickets=RouteConfig(default=ModelRef(model="ticket_classifier", version="t2")),
        predict_risk=RouteConfig(default=ModelRef(model="risk_scorer", version="r1")),
    )
    parent = _routes(
        classify_ticket=ticket,
        classify_tickets=ticket,
        predict_risk=RouteConfig(default=ModelRef(model="risk_scorer", version="r1")),
    )
    plans, restart = release_rollback_plans(current, parent)
    assert restart == []
    [plan] = plans
    assert plan.endpoints == ("classify_ticket", "classify_tickets")
    assert (plan.candidate_version, plan.baseline_version, plan.steps) == ("t1", "t2", (100.0,))


def test_what_a_rollout_cannot_change_needs_a_restart():
    risk = RouteConfig(default=ModelRef(model="risk_scorer", version="r1"))
    current = _routes(
        predict_risk=RouteConfig(default=ModelRef(model="ticket_classifier", version="t1")),
        classify_ticket=RouteConfig(default=ModelRef(model="ticket_classifier", version="t1")),
        classify_tickets=RouteConfig(default=ModelRef(model="ticket_classifier", version="t1")),
    )
    ruled = RouteConfig(
        default=ModelRef(model="ticket_classifier", version="t1"),
        rules=[{"model": "ticket_classifier", "version": "t0", "tenant": "acme"}],
    )
    parent = _routes(predict_risk=risk, classify_ticket=ruled, classify_tickets=ruled)
    plans, restart = release_rollback_plans(current, parent)
    assert plans == []
    assert restart == ["classify_ticket", "classify_tickets", "predict_risk"]
