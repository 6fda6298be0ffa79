"""BentoML's request timeout, with its timer cancelled once the request is answered.

BentoML 1.4's `TimeoutMiddleware` arms `loop.call_later(timeout, ...)` for every request and
never cancels it. Each finished request therefore stays reachable for the whole timeout (its
waiter future, the context copied into the timer and the OpenTelemetry span in that context):
at 1,000 requests/s and a 15 s timeout that is ~15,000 timers and ~300,000 objects, which the
garbage collector's full passes walk again and again (measured: ~55 ms per pass, ~7 % of a
worker's CPU). `install()` makes BentoML build this subclass instead; the answers are the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse


class CancellingTimeoutMiddleware(traffic.TimeoutMiddleware):
    """Answers 504 after `timeout` seconds as BentoML's does, and disarms its timer on answer."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, answered)

        async def send_and_note(message: Any) -> None:
            _resolve(answered)
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, receive, send_and_note))
        # A handler that ends without answering (it raised) is not waited on until the timeout.
        handler.add_done_callback(lambda _: _resolve(answered))
        try:
            await answered
        except TimeoutError:
            if handler.cancel():
                body = {"error": f"Not able to process the request in {self.timeout} seconds"}
                await JSONResponse(body, status_code=504)(scope, receive, send)
            return
        finally:
            timer.cancel()
        await handler


def _resolve(answered: asyncio.Future[None]) -> None:
    if not answered.done():
        answered.set_result(None)


def install() -> None:
    """Make BentoML's app factory use the cancelling middleware (it imports it per build)."""
    traffic.TimeoutMiddleware = CancellingTimeoutMiddleware  # type: ignore[misc]
