"""The real service over HTTP: answers, the error envelope for every code, auth, sizes, probes."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.conftest import ServiceServer, auth

ENVELOPE_KEYS = {"code", "message", "request_id"}


def risk_features(server: ServiceServer) -> dict[str, float]:
    """One value per feature the routed risk model takes (as the OpenAPI document lists)."""
    spec = httpx.get(f"{server.url}/docs.json", timeout=10).json()
    schema = spec["paths"]["/predict_risk"]["post"]["requestBody"]["content"]["application/json"]
    names = schema["schema"]["properties"]["features"]["required"]
    return {name: float(index % 3) for index, name in enumerate(names)}


def assert_envelope(answer: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == ENVELOPE_KEYS, body
    assert body["error"]["code"] == code, body
    assert body["error"]["request_id"] == answer.headers["x-request-id"]
    return body["error"]


def assert_prediction(body: dict[str, Any]) -> None:
    probabilities = body["probabilities"]
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-3)
    assert body["predicted_class"] in probabilities
    assert body["confidence"] == max(probabilities.values())
    assert body["confidence"] == probabilities[body["predicted_class"]]


@pytest.fixture(scope="module")
def client(service_server: ServiceServer) -> Iterator[httpx.Client]:
    with service_server.client() as client:
        yield client


def test_classify_ticket_answers_decision_confidence_model_and_request_id(client):
    answer = client.post(
        "/classify_ticket", json={"text": "I was charged twice this month"}, headers=auth()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert_prediction(body)
    assert body["model_name"] == "ticket_classifier"
    assert body["model_version"]
    assert body["request_id"] == answer.headers["x-request-id"]


def test_a_well_formed_client_request_id_is_echoed_beside_ours(client):
    kept = client.post(
        "/classify_ticket",
        json={"text": "hello"},
        headers={**auth(), "X-Request-ID": "client-0001"},
    )
    assert kept.headers["x-client-request-id"] == "client-0001"
    assert kept.headers["x-request-id"] == kept.json()["request_id"] != "client-0001"
    dropped = client.post(
        "/classify_ticket", json={"text": "hello"}, headers={**auth(), "X-Request-ID": "a:b"}
    )
    assert "x-client-request-id" not in dropped.headers
    assert dropped.headers["x-request-id"] not in ("a:b", "client-0001")


def test_bulk_answers_in_order_with_item_request_ids(client):
    tickets = ["refund my invoice", "the app crashes", "where is my parcel"]
    answer = client.post("/classify_tickets", json={"tickets": tickets}, headers=auth("globex"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p["request_id"] for p in body["predictions"]] == [
        f"{body['request_id']}:{i}" for i in range(len(tickets))
    ]
    for prediction in body["predictions"]:
        assert_prediction(prediction)
    single = client.post("/classify_ticket", json={"text": tickets[1]}, headers=auth()).json()
    assert body["predictions"][1]["predicted_class"] == single["predicted_class"]


def test_predict_risk_routes_by_region_and_checks_the_feature_set(client, service_server):
    features = risk_features(service_server)
    for region in (None, "eu"):
        headers = {**auth(), **({"X-Region": region} if region else {})}
        answer = client.post("/predict_risk", json={"features": features}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert_prediction(answer.json())
        assert answer.json()["model_name"] == "risk_scorer"
    missing = dict(list(features.items())[1:])
    error = assert_envelope(
        client.post("/predict_risk", json={"features": missing}, headers=auth()),
        "validation_error",
        422,
    )
    assert "missing features" in error["message"]


@pytest.mark.parametrize(
    ("body", "headers", "mentions"),
    [
        ({"text": "hi", "priority": "high"}, {}, "priority"),
        ({"text": "x" * 2001}, {}, "text"),
        ({"text": ["hi"]}, {}, "text"),
        ({}, {}, "text"),
        (b"{not json", {}, "JSON"),
        (b"", {}, "JSON"),
        (b"text=hi", {"Content-Type": "application/x-www-form-urlencoded"}, "JSON"),
        ({"text": "hi"}, {"X-Region": "EU WEST"}, "X-Region"),
    ],
)
def test_invalid_requests_are_validation_errors(client, body, headers, mentions):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = client.post("/classify_ticket", headers={**auth(), **headers}, **kwargs)
    error = assert_envelope(answer, "validation_error", 400)
    assert mentions in error["message"]


def test_bulk_limits_are_validation_errors(client):
    for tickets in ([], ["ticket"] * 17):
        answer = client.post("/classify_tickets", json={"tickets": tickets}, headers=auth())
        assert_envelope(answer, "validation_error", 400)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic YWNtZTp4"}],
)
def test_missing_or_unknown_keys_are_unauthorized(client, headers):
    answer = client.post("/classify_ticket", json={"text": "hi"}, headers=headers)
    assert_envelope(answer, "unauthorized", 401)


def test_a_tenant_outside_its_endpoints_is_forbidden(client, service_server):
    answer = client.post(
        "/predict_risk", json={"features": risk_features(service_server)}, headers=auth("globex")
    )
    assert_envelope(answer, "forbidden", 403)


def test_unknown_routes_and_methods_are_not_found(client):
    assert_envelope(client.get("/nothing-here"), "not_found", 404)
    assert_envelope(client.post("/classify", json={}, headers=auth()), "not_found", 404)
    wrong_method = client.get("/classify_ticket", headers=auth())
    assert_envelope(wrong_method, "not_found", 405)
    assert "POST" in wrong_method.headers["allow"]
    assert_envelope(client.post("/readyz"), "not_found", 405)


def test_payload_above_the_limit_is_refused_before_parsing(client):
    big = b'{"text": "' + b"a" * 9000 + b'"}'
    error = assert_envelope(
        client.post("/classify_ticket", content=big, headers=auth()), "payload_too_large", 413
    )
    assert "8192" in error["message"]

    def chunks():  # no Content-Length: the size is counted while reading
        yield b'{"text": "'
        for _ in range(10):
            yield b"b" * 1000
        yield b'"}'

    streamed = client.post("/classify_ticket", content=chunks(), headers=auth())
    assert "content-length" not in streamed.request.headers
    assert_envelope(streamed, "payload_too_large", 413)


def test_a_slow_model_times_out_at_the_configured_limit(client):
    start = time.monotonic()
    answer = client.post(
        "/classify_ticket",
        json={"text": "slow"},
        headers={**auth(), "X-Servewatch-Fault": "latency=5000"},
    )
    assert_envelope(answer, "timeout", 504)
    assert 1.5 < time.monotonic() - start < 4.5  # request_timeout_s is 2 in the test config


def test_a_failing_model_is_a_model_error(client):
    answer = client.post(
        "/classify_ticket",
        json={"text": "fail"},
        headers={**auth(), "X-Servewatch-Fault": "model_error"},
    )
    assert_envelope(answer, "model_error", 500)


def test_a_full_batch_queue_answers_overloaded(service_server):
    async def flood() -> list[httpx.Response]:
        body = {"tickets": [f"ticket {i} about my invoice" for i in range(16)]}
        async with httpx.AsyncClient(base_url=service_server.url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/classify_tickets", json=body, headers=auth()) for _ in range(40))
            )

    answers = asyncio.run(flood())
    overloaded = [a for a in answers if a.status_code != 200]
    assert overloaded, "40 concurrent bulk requests never overflowed a 64-item queue"
    for answer in overloaded:
        assert_envelope(answer, "overloaded", 503)
        assert answer.headers["retry-after"] == "1"


def test_probes_answer_without_a_key(client, service_server):
    assert client.get("/livez").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == service_server.checks
    details = client.get("/readyz/details")  # the test client is on loopback
    assert details.json()["checks"] == dict.fromkeys(service_server.checks, "ok")


def test_openapi_documents_bearer_auth_and_the_envelope(client):
    spec = client.get("/docs.json").json()
    operation = spec["paths"]["/classify_ticket"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    assert "ErrorEnvelope" in spec["components"]["schemas"]


def test_concurrent_requests_are_all_answered(service_server):
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=service_server.url, timeout=10) as client:
            texts = [f"ticket {uuid.uuid4().hex} about my invoice" for _ in range(64)]
            answers = await asyncio.gather(
                *(client.post("/classify_ticket", json={"text": t}, headers=auth()) for t in texts)
            )
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * 64
