import json

import pytest
from pydantic import ValidationError

from core.config import LimitsConfig
from service.schemas import ErrorEnvelope, openapi_overlay, request_schemas

SCHEMAS = request_schemas(LimitsConfig(max_ticket_chars=20, max_bulk_items=3))


def _valid(model, payload: object) -> bool:
    try:
        model.model_validate_json(json.dumps(payload))
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        ({"text": "refund please"}, True),
        ({"text": "x" * 20}, True),
        ({"text": "x" * 21}, False),
        ({"text": ""}, False),
        ({"text": "  \n\t "}, False),
        ({"text": 42}, False),
        ({"text": "hi", "priority": "high"}, False),
        ({}, False),
        (["hi"], False),
    ],
)
def test_ticket_requests(payload, ok):
    assert _valid(SCHEMAS.ticket, payload) is ok


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        ({"tickets": ["a", "b", "c"]}, True),
        ({"tickets": ["a", "b", "c", "d"]}, False),
        ({"tickets": []}, False),
        ({"tickets": ["a", "x" * 21]}, False),
        ({"tickets": "a"}, False),
    ],
)
def test_bulk_requests(payload, ok):
    assert _valid(SCHEMAS.tickets, payload) is ok


@pytest.mark.parametrize(
    ("features", "ok"),
    [
        ({"account_age_days": 30, "orders_last_30d": 2.5}, True),
        ({"account_age_days": True}, False),
        ({"account_age_days": "30"}, False),
        ({"account_age_days": 1e13}, False),
        ({"account_age_days": None}, False),
        ({"1st": 1.0}, False),
        ({}, False),
        ({f"f{i}": 1.0 for i in range(65)}, False),
    ],
)
def test_risk_requests(features, ok):
    assert _valid(SCHEMAS.risk, {"features": features}) is ok


def test_non_finite_features_are_rejected():
    with pytest.raises(ValidationError, match="finite"):
        SCHEMAS.risk.model_validate_json('{"features": {"a": NaN}}')


def _bentoml_like_spec() -> dict:
    operation = {
        "responses": {200: {"description": "ok", "content": {}}, 400: {"description": "bad"}},
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"features": {"type": "object"}},
                    }
                }
            }
        },
    }
    return {
        "paths": {
            "/predict_risk": {"post": operation},
            "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {}},
    }


def test_openapi_overlay_documents_auth_errors_and_exact_features():
    spec = openapi_overlay(
        _bentoml_like_spec(), ["/predict_risk", "/missing"], risk_features=["a", "b"]
    )
    operation = spec["paths"]["/predict_risk"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert operation["requestBody"]["required"] is True
    assert {"200", "400", "401", "403", "404", "413", "422", "500", "503", "504"} <= set(
        operation["responses"]
    )
    assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    assert "ErrorDetail" in spec["components"]["schemas"]
    features = operation["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "features"
    ]
    assert features["required"] == ["a", "b"]
    assert features["additionalProperties"] is False
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
    headers = {p["name"] for p in operation["parameters"]}
    assert headers == {"X-Request-ID", "X-Region"}


def test_error_envelope_model_matches_the_contract():
    envelope = ErrorEnvelope.model_validate(
        {"error": {"code": "timeout", "message": "slow", "request_id": "r"}}
    )
    assert envelope.error.code == "timeout"
    with pytest.raises(ValidationError):
        ErrorEnvelope.model_validate({"error": {"code": "timeout"}, "detail": []})
