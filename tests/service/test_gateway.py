"""The gateway driven directly, without a server: probes, envelopes and request ids."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.datastructures import Headers

from service.gateway import Gateway, RuntimeSlot, request_id_from


class NoRuntime(RuntimeSlot):
    runtime = None


class Inner:
    """Stands for BentoML's app: answers with a fixed status and body."""

    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        self.status = status
        self.body = body
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def call(gateway: Gateway, method: str, path: str, headers: dict[str, str] | None = None):
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gateway(scope, receive, send))
    start, body = sent
    return start["status"], dict(start["headers"]), json.loads(body["body"])


def test_livez_answers_without_a_runtime():
    inner = Inner()
    status, _, payload = call(Gateway(inner, slot=NoRuntime), "GET", "/livez")
    assert (status, payload, inner.calls) == (200, {"status": "alive"}, 0)


def test_readyz_and_business_routes_are_not_ready_while_starting():
    gateway = Gateway(Inner(), slot=NoRuntime)
    client_id = "client-id-0001"
    status, headers, payload = call(gateway, "GET", "/readyz", {"X-Request-ID": client_id})
    assert status == 503 and payload["error"]["code"] == "not_ready"
    assert headers[b"x-request-id"] == client_id.encode()
    status, _, payload = call(gateway, "POST", "/classify_ticket")
    assert status == 503 and payload["error"]["code"] == "not_ready"


def test_probes_only_answer_get():
    status, headers, payload = call(Gateway(Inner(), slot=NoRuntime), "POST", "/livez")
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"
    assert payload["error"]["code"] == "not_found"


def test_bentoml_error_answers_are_rewritten_into_the_envelope():
    inner = Inner(status=404, body=b"Not Found")
    status, headers, payload = call(Gateway(inner, slot=NoRuntime), "GET", "/nowhere")
    assert status == 404 and payload["error"]["code"] == "not_found"
    assert payload["error"]["request_id"] == headers[b"x-request-id"].decode()


def test_request_ids_are_kept_only_when_well_formed():
    assert request_id_from(Headers({"x-request-id": "abc-DEF.123_4"})) == "abc-DEF.123_4"
    fresh = request_id_from(Headers({"x-request-id": "bad:id:0001"}))
    assert fresh != "bad:id:0001" and len(fresh) == 32
