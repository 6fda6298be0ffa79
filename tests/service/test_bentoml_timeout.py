import asyncio
from typing import Any

import pytest
from bentoml._internal.server.http import traffic

from service.bentoml_timeout import CancellingTimeoutMiddleware, install


class RecordingLoop(asyncio.SelectorEventLoop):
    """An event loop that keeps every timer it arms."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[asyncio.TimerHandle] = []

    def call_later(self, delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        handle = super().call_later(delay, callback, *args, **kwargs)
        self.timers.append(handle)
        return handle


async def answering(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def hanging(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(60)


async def failing(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("handler bug")


def _call(app: Any, timeout: float) -> tuple[list[dict], RecordingLoop]:
    loop = RecordingLoop()
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    middleware = CancellingTimeoutMiddleware(app, timeout=timeout)
    try:
        loop.run_until_complete(middleware({"type": "http"}, receive, send))
    finally:
        loop.close()
    return sent, loop


def test_answered_request_leaves_no_timer_armed():
    sent, loop = _call(answering, timeout=30)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    timeouts = [t for t in loop.timers if t.when() - loop.time() > 20]
    assert timeouts
    assert all(t.cancelled() for t in timeouts)


def test_slow_handler_still_gets_504_after_the_timeout():
    sent, _ = _call(hanging, timeout=0.05)
    assert sent[0]["status"] == 504
    assert b"Not able to process the request in 0.05 seconds" in sent[1]["body"]


def test_failing_handler_raises_at_once_instead_of_waiting_for_the_timeout():
    with pytest.raises(RuntimeError, match="handler bug"):
        _call(failing, timeout=30)  # BentoML's waits the 30 s, then loses the error


def test_install_makes_bentoml_build_the_cancelling_middleware(monkeypatch):
    monkeypatch.setattr(traffic, "TimeoutMiddleware", traffic.TimeoutMiddleware)
    install()
    assert traffic.TimeoutMiddleware is CancellingTimeoutMiddleware
