import pytest

from core.config import AppConfig, ModelRef, RouteConfig, RoutingRule
from service.errors import ServiceError
from service.routing import Router, parse_region

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
