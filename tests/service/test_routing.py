import math
import random
import uuid

import pytest

from core.config import AppConfig, ModelRef, RouteConfig, RoutingRule
from service.errors import ServiceError
from service.routing import Router, Split, parse_region

ROUTING = {
    "predict_risk": RouteConfig(
        default=ModelRef(model="risk_scorer"),
        rules=[
            RoutingRule(tenant="acme", region="eu", model="risk_scorer", version="v3"),
            RoutingRule(region="eu", model="risk_scorer", version="v2"),
            RoutingRule(tenant="initech", model="risk_scorer_shadow"),
        ],
    ),
    "classify_ticket": RouteConfig(default=ModelRef(model="ticket_classifier", version="v1")),
}


@pytest.mark.parametrize(
    ("tenant", "region", "expected"),
    [
        ("acme", "eu", ("risk_scorer", "v3")),
        ("acme", "us", ("risk_scorer", "latest")),
        ("globex", "eu", ("risk_scorer", "v2")),
        (None, "eu", ("risk_scorer", "v2")),
        ("initech", None, ("risk_scorer_shadow", "latest")),
        ("initech", "eu", ("risk_scorer", "v2")),
        (None, None, ("risk_scorer", "latest")),
    ],
)
def test_first_matching_rule_wins_else_the_default(tenant, region, expected):
    ref = Router(ROUTING).route("predict_risk", tenant, region)
    assert (ref.model, ref.version) == expected


def test_unrouted_endpoint_is_not_found():
    with pytest.raises(ServiceError) as excinfo:
        Router(ROUTING).route("predict_weather", "acme", None)
    assert excinfo.value.code == "not_found"


def test_targets_list_each_reference_once():
    router = Router(ROUTING)
    assert [(r.model, r.version) for r in router.targets("predict_risk")] == [
        ("risk_scorer", "latest"),
        ("risk_scorer", "v3"),
        ("risk_scorer", "v2"),
        ("risk_scorer_shadow", "latest"),
    ]
    assert len(router.targets()) == 5


def test_default_config_routes_every_business_endpoint():
    router = Router(AppConfig().routing)
    assert set(router.endpoints) == {"classify_ticket", "classify_tickets", "predict_risk"}
    assert router.route("classify_tickets", None, None).model == "ticket_classifier"


@pytest.mark.parametrize("value", ["eu", "us-east-1", "ap_south", "x" * 32])
def test_well_formed_regions_pass(value):
    assert parse_region(value) == value


def test_absent_region_is_none():
    assert parse_region(None) is None


@pytest.mark.parametrize("value", ["", "EU", "-eu", "x" * 33, "eu west", "eu\u00e9", "eu\n"])
def test_malformed_regions_are_validation_errors(value):
    with pytest.raises(ServiceError) as excinfo:
        parse_region(value)
    assert (excinfo.value.code, excinfo.value.status) == ("validation_error", 400)


# -- canary split ---------------------------------------------------------------------------

V1, V2 = ModelRef(model="risk_scorer", version="v1"), ModelRef(model="risk_scorer", version="v2")
CANARY_ROUTING = {"predict_risk": RouteConfig(default=V1)}
BASELINES = frozenset({("risk_scorer", "v1")})


def _ids(n: int, seed: int = 18) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def _canary(weight: float, **scope) -> Router:
    router = Router(CANARY_ROUTING)
    router.set_splits({"predict_risk": Split.of(BASELINES, V2, weight, salt=7, **scope)})
    return router


def test_without_a_split_the_route_decides():
    router = Router(CANARY_ROUTING)
    assert router.route_request("predict_risk", "acme", None, "r1") == V1


def test_a_request_id_always_goes_to_the_same_side():
    router = _canary(30)
    for request_id in _ids(200):
        first = router.route_request("predict_risk", "acme", None, request_id)
        assert router.route_request("predict_risk", "globex", "eu", request_id) == first


@pytest.mark.parametrize("weight", [5, 25, 50])
def test_the_candidate_share_is_the_weight_within_sampling_error(weight):
    n = 20_000
    router = _canary(weight)
    hits = sum(router.route_request("predict_risk", "acme", None, i) == V2 for i in _ids(n))
    p = weight / 100
    bound = 4 * math.sqrt(n * p * (1 - p))  # 4 standard deviations of a binomial(n, p)
    assert abs(hits - n * p) < bound


def test_zero_and_full_weight_are_exact():
    ids = _ids(2000)
    assert all(_canary(0).route_request("predict_risk", "a", None, i) == V1 for i in ids)
    assert all(_canary(100).route_request("predict_risk", "a", None, i) == V2 for i in ids)


def test_a_growing_weight_keeps_the_requests_it_already_moved():
    ids = _ids(2000)
    at_5 = {i for i in ids if _canary(5).route_request("predict_risk", "a", None, i) == V2}
    at_25 = {i for i in ids if _canary(25).route_request("predict_risk", "a", None, i) == V2}
    assert at_5 < at_25


def test_sticky_splits_by_tenant_and_leaves_anonymous_requests_on_the_baseline():
    router = _canary(50, sticky=True)
    tenants = [f"tenant-{n}" for n in range(400)]
    sides = {}
    for tenant in tenants:
        answers = {router.route_request("predict_risk", tenant, None, i) for i in _ids(20)}
        assert len(answers) == 1  # every request of a tenant on one side
        sides[tenant] = answers.pop()
    on_candidate = sum(side == V2 for side in sides.values())
    assert abs(on_candidate - 200) < 4 * math.sqrt(400 * 0.25)
    assert router.route_request("predict_risk", None, None, "r1") == V1


def test_the_split_stays_within_its_tenant_and_region_scope():
    router = _canary(100, tenant="acme", region="eu")
    assert router.route_request("predict_risk", "acme", "eu", "r1") == V2
    assert router.route_request("predict_risk", "acme", "us", "r1") == V1
    assert router.route_request("predict_risk", "globex", "eu", "r1") == V1
    assert router.route_request("predict_risk", "acme", None, "r1") == V1


def test_only_the_baselines_requests_are_split():
    routing = {
        "predict_risk": RouteConfig(
            default=V1, rules=[RoutingRule(tenant="initech", model="risk_scorer", version="v0")]
        )
    }
    router = Router(routing)
    router.set_splits({"predict_risk": Split.of(BASELINES, V2, 100, salt=7)})
    assert router.route_request("predict_risk", "initech", None, "r1").version == "v0"
    assert router.route_request("predict_risk", "acme", None, "r1") == V2
