"""Fault injection for demos and end-to-end tests, honoured only when settings enable it.

A request may carry `X-Servewatch-Fault: model_error`, `timeout` or `latency=250` (milliseconds),
optionally `@VERSION` (`latency=250@3f2a...`): only when that model version answers, so a
canary can be made slow or failing while its baseline is not. Off by default: with
`SERVEWATCH_FAULT_INJECTION` unset the header is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

FAULT_HEADER = "x-servewatch-fault"
MAX_INJECTED_LATENCY_MS = 5_000


@dataclass(frozen=True)
class Fault:
    """What to break for one request: an error class to raise and/or latency to add."""

    error: str | None = None
    latency_ms: int = 0
    version: str | None = None  # only the requests this model version answers

    def hits(self, version: str) -> bool:
        """Whether the fault applies to a request that `version` answers."""
        return self.version is None or self.version == version


def parse_fault(value: str | None) -> Fault | None:
    """The fault a header value asks for; None for absent or unrecognised values."""
    if not value:
        return None
    value, _, version = value.strip().lower().partition("@")
    scope = version or None
    if value in ("model_error", "timeout"):
        return Fault(error=value, version=scope)
    name, _, amount = value.partition("=")
    if name == "latency" and amount.isdigit():
        return Fault(latency_ms=min(int(amount), MAX_INJECTED_LATENCY_MS), version=scope)
    return None
