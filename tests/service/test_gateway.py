"""The gateway driven directly, without a server: probes, envelopes and request ids."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, ClassVar

from starlette.datastructures import Headers

from core.config import AppConfig, hash_api_key
from service.gateway import Gateway, RuntimeSlot, client_request_id, new_request_id
from service.instrumentation import RequestTrace


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


def call(
    gateway: Gateway,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
):
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gateway(scope, receive, send))
    start, body = sent
    content = body["body"]
    payload = (
        json.loads(content)
        if dict(start["headers"])[b"content-type"] == b"application/json"
        else content
    )
    return start["status"], dict(start["headers"]), payload


def test_livez_answers_without_a_runtime():
    inner = Inner()
    status, _, payload = call(Gateway(inner, slot=NoRuntime), "GET", "/livez")
    assert (status, payload, inner.calls) == (200, {"status": "alive"}, 0)


def test_readyz_and_business_routes_are_not_ready_while_starting():
    gateway = Gateway(Inner(), slot=NoRuntime)
    client_id = "client-id-0001"
    status, headers, payload = call(gateway, "GET", "/readyz", {"X-Request-ID": client_id})
    assert status == 503
    assert payload["error"]["code"] == "not_ready"
    assert headers[b"x-client-request-id"] == client_id.encode()
    assert headers[b"x-request-id"] == payload["error"]["request_id"].encode() != client_id.encode()
    status, _, payload = call(gateway, "POST", "/classify_ticket")
    assert status == 503
    assert payload["error"]["code"] == "not_ready"


def test_probes_only_answer_get():
    status, headers, payload = call(Gateway(Inner(), slot=NoRuntime), "POST", "/livez")
    assert status == 405
    assert headers[b"allow"] == b"GET, HEAD"
    assert payload["error"]["code"] == "not_found"


def test_unknown_paths_are_answered_here_and_never_reach_bentoml():
    inner = Inner(status=200, body=b"<html><script src='https://tags.example'></script>")
    gateway = Gateway(inner, slot=NoRuntime)
    for path in ("/", "/docs", "/nowhere", "/x1/y2", "/schema.json"):
        status, headers, payload = call(gateway, "GET", path)
        assert status == 404
        assert payload["error"]["code"] == "not_found"
        assert payload["error"]["request_id"] == headers[b"x-request-id"].decode()
    assert inner.calls == 0


def test_a_business_route_with_another_method_is_a_405_envelope():
    status, headers, payload = call(Gateway(Inner(), slot=NoRuntime), "GET", "/classify_ticket")
    assert (status, headers[b"allow"]) == (405, b"POST")
    assert payload["error"]["code"] == "not_found"


def test_metrics_are_served_by_the_gateway():
    status, headers, payload = call(Gateway(Inner(), slot=NoRuntime), "GET", "/metrics")
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/plain")
    assert b"# TYPE" in payload


class _Check:
    def __init__(self, name: str, ok: bool, detail: str) -> None:
        self.name, self.ok, self.detail = name, ok, detail


class _Readiness:
    ready = False

    def evaluate(self) -> None:
        return None

    def results(self) -> list[_Check]:
        return [_Check("models", True, "ok"), _Check("store", False, "db.internal:5432 refused")]

    def failing(self) -> list[_Check]:
        return [r for r in self.results() if not r.ok]


class _Runtime:
    readiness = _Readiness()

    class settings:
        access_log = False

        class config:
            tenants: ClassVar[dict[str, object]] = {}

            @staticmethod
            def tenant_for_key(key: str) -> str | None:
                return "acme" if key == "good-key" else None


class Starting(RuntimeSlot):
    runtime = _Runtime()  # type: ignore[assignment]


def test_readyz_names_checks_only_and_details_need_loopback_or_a_key():
    gateway = Gateway(Inner(), slot=Starting)
    stranger = ("203.0.113.9", 40000)
    status, _, payload = call(gateway, "GET", "/readyz", client=stranger)
    assert status == 503
    assert payload["error"]["message"] == "failing checks: store"
    assert "5432" not in json.dumps(payload)
    status, _, payload = call(gateway, "GET", "/readyz/details", client=stranger)
    assert (status, payload["error"]["code"]) == (401, "unauthorized")
    keyed = {"Authorization": "Bearer good-key"}
    status, _, payload = call(gateway, "GET", "/readyz/details", keyed, client=stranger)
    assert (status, payload["checks"]["store"]) == (503, "db.internal:5432 refused")
    status, _, payload = call(gateway, "GET", "/readyz/details")  # on loopback
    assert payload["checks"] == {"models": "ok", "store": "db.internal:5432 refused"}


def test_request_ids_are_ours_and_the_clients_is_kept_only_when_well_formed():
    assert client_request_id(Headers({"x-request-id": "abc-DEF.123_4"})) == "abc-DEF.123_4"
    assert client_request_id(Headers({"x-request-id": "bad:id:0001"})) is None
    assert client_request_id(Headers({})) is None
    assert len(new_request_id()) == 32
    assert new_request_id() != new_request_id()


class JournalingRuntime:
    """Stands for a worker's runtime with the journal on: `finish` returns what the answer
    must wait for, done one loop turn later, as the tick journal's is."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        tenants = {"acme": {"api_key_sha256": [hash_api_key("acme-key")]}}
        self.settings = SimpleNamespace(
            config=AppConfig.model_validate({"tenants": tenants}),
            fault_injection=False,
            access_log=False,
        )
        self.instrumentation = SimpleNamespace(
            request_started=lambda endpoint: None, request_abandoned=lambda endpoint: None
        )
        self.serving = True
        self.recorded: list[RequestTrace] = []

    def keep_timers(self) -> None:
        pass

    def resolve(self, trace: RequestTrace) -> None:
        trace.model_name, trace.model_version = "ticket_classifier", "v1"

    def finish(self, trace: RequestTrace, latency_s: float) -> asyncio.Future[None]:
        self.recorded.append(trace)
        self.events.append("recorded")
        loop = asyncio.get_running_loop()
        written = loop.create_future()
        loop.call_soon(lambda: (self.events.append("journaled"), written.set_result(None)))
        return written


class Answering(Inner):
    """BentoML's app answering 200, noting when it returns; `then_raise` fails it afterwards."""

    def __init__(self, events: list[str], then_raise: bool = False) -> None:
        super().__init__(body=b'{"predicted_class": "billing"}')
        self.events = events
        self.then_raise = then_raise

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await super().__call__(scope, receive, send)
        self.events.append("app returned")
        if self.then_raise:
            raise RuntimeError("after the answer")


def _answered(then_raise: bool) -> tuple[list[str], JournalingRuntime]:
    events: list[str] = []
    runtime = JournalingRuntime(events)

    class Slot(RuntimeSlot):
        pass

    Slot.runtime = runtime  # type: ignore[assignment]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/classify_ticket",
        "headers": [(b"authorization", b"Bearer acme-key")],
        "client": ("127.0.0.1", 50000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"text": "refund"}', "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        events.append(f"sent {message['type']}")

    gateway = Gateway(Answering(events, then_raise), slot=Slot)
    asyncio.run(gateway(scope, receive, send))
    return events, runtime


def test_an_answers_body_goes_out_after_its_records_journal_write():
    events, runtime = _answered(then_raise=False)
    assert events == [
        "sent http.response.start",
        "recorded",
        "app returned",  # the body was held: BentoML's handler did not wait for the journal
        "journaled",
        "sent http.response.body",
    ]
    assert [trace.error for trace in runtime.recorded] == [None]


def test_an_answer_sent_whole_before_the_app_failed_still_goes_out_as_recorded():
    events, runtime = _answered(then_raise=True)
    assert events[-2:] == ["journaled", "sent http.response.body"]
    assert [trace.error for trace in runtime.recorded] == [None]  # recorded once, as answered
