"""The business answer's `send`: ids added, BentoML's errors enveloped, the request recorded
before any of its body can reach the client."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from service.answers import EnvelopeSend
from service.instrumentation import RequestTrace


def _trace() -> RequestTrace:
    now = time.perf_counter()
    return RequestTrace(
        request_id="req-1",
        endpoint="classify_tickets",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        started=now,
        resumed=now,
    )


def _drive(messages: list[dict[str, Any]]) -> list[str]:
    """Pass `messages` through an EnvelopeSend; what happened, in order."""
    events: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        events.append(f"sent {message['type']} {message.get('status', '')}".strip())

    envelope = EnvelopeSend(send, _trace(), lambda: events.append("recorded"))

    async def run() -> None:
        for message in messages:
            await envelope(message)

    asyncio.run(run())
    return events


def test_an_answer_in_parts_is_recorded_before_its_first_part_and_only_once():
    events = _drive(
        [
            {"type": "http.response.start", "status": 200, "headers": []},
            {"type": "http.response.body", "body": b'{"predictions": []}', "more_body": True},
            {"type": "http.response.body", "body": b"", "more_body": False},
        ]
    )
    assert events == [
        "sent http.response.start 200",
        "recorded",
        "sent http.response.body",
        "sent http.response.body",
    ]


def test_an_error_from_bentoml_is_recorded_and_sent_as_the_envelope():
    sent: list[dict[str, Any]] = []
    recorded: list[bool] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    trace = _trace()
    envelope = EnvelopeSend(send, trace, lambda: recorded.append(True))

    async def run() -> None:
        await envelope({"type": "http.response.start", "status": 500, "headers": []})
        await envelope({"type": "http.response.body", "body": b"boom", "more_body": True})
        assert not recorded  # held until the whole error is known
        await envelope({"type": "http.response.body", "body": b"", "more_body": False})

    asyncio.run(run())
    assert recorded == [True]
    body = json.loads(sent[-1]["body"])
    assert body["error"]["request_id"] == "req-1"
    assert trace.error is not None


def test_the_body_waits_for_the_records_journal_write():
    events: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        events.append(f"sent {message['type']}")

    async def run() -> None:
        loop = asyncio.get_running_loop()
        written = loop.create_future()

        def record() -> asyncio.Future[None]:
            events.append("recorded")
            loop.call_soon(lambda: (events.append("journaled"), written.set_result(None)))
            return written

        envelope = EnvelopeSend(send, _trace(), record)
        await envelope({"type": "http.response.start", "status": 200, "headers": []})
        await envelope({"type": "http.response.body", "body": b"{", "more_body": True})
        await envelope({"type": "http.response.body", "body": b"}", "more_body": False})
        events.append("app returned")  # the body is held until the gateway releases it
        await envelope.release()
        await envelope.release()  # once

    asyncio.run(run())
    assert events == [
        "sent http.response.start",
        "recorded",
        "app returned",
        "journaled",
        "sent http.response.body",
        "sent http.response.body",
    ]
