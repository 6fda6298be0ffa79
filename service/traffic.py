"""Demo traffic: several tenants, Poisson arrivals, realistic tickets, and injectable scenarios.

`plan_traffic` is pure (seeded, no I/O); `send_traffic` replays a plan against a service.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from service.faults import FAULT_HEADER

ScenarioKind = Literal["confidence_drop", "class_shift", "error_burst", "latency_regression"]
SCENARIOS: tuple[str, ...] = ("confidence_drop", "class_shift", "error_burst", "latency_regression")

# Words no ticket template uses: tickets made of them leave the model unsure (confidence drop).
UNFAMILIAR_WORDS = (
    "quasar", "marmalade", "origami", "tundra", "sonnet", "glacier", "kaleidoscope", "tapestry",
    "nebula", "lantern", "meadow", "harpsichord", "basalt", "zephyr", "velvet", "archipelago",
)  # fmt: skip


@dataclass(frozen=True)
class TenantProfile:
    """A tenant's API key and its mix of endpoints and ticket categories."""

    name: str
    api_key: str
    endpoints: Mapping[str, float]
    categories: Mapping[str, float] | None = None


DEMO_TENANTS: tuple[TenantProfile, ...] = (
    TenantProfile(
        "acme",
        "demo-acme-key",
        {"classify_ticket": 0.6, "classify_tickets": 0.1, "predict_risk": 0.3},
    ),
    # Tickets follow the corpus's category priors, as the models' baselines do: the demo's
    # drift is the one it injects (a tenant's own mix shows as drift against the baseline
    # reference; `monitors.reference: production` is what such a tenant needs).
    TenantProfile("globex", "demo-globex-key", {"classify_ticket": 0.85, "classify_tickets": 0.15}),
    TenantProfile("initech", "demo-initech-key", {"predict_risk": 0.7, "classify_ticket": 0.3}),
)


@dataclass(frozen=True)
class Scenario:
    """A change in traffic from `start_s` for `duration_s` (None: until the end)."""

    kind: ScenarioKind
    start_s: float = 0.0
    duration_s: float | None = None
    tenant: str | None = None  # None: every tenant
    target_class: str = "shipping"  # class_shift: the category that takes over
    intensity: float = 0.8  # share of affected requests

    def active(self, at_s: float, tenant: str) -> bool:
        if self.tenant is not None and tenant != self.tenant:
            return False
        end = float("inf") if self.duration_s is None else self.start_s + self.duration_s
        return self.start_s <= at_s < end


@dataclass(frozen=True)
class PlannedRequest:
    at_s: float
    tenant: str
    endpoint: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


TicketSource = Callable[[random.Random, str | None], str]
RiskSource = Callable[[random.Random], dict[str, float]]


def plan_traffic(
    tenants: Sequence[TenantProfile],
    rate: float,
    duration_s: float,
    *,
    ticket_text: TicketSource,
    risk_features: RiskSource,
    scenarios: Sequence[Scenario] = (),
    seed: int = 0,
    bulk_size: tuple[int, int] = (5, 40),
) -> Iterator[PlannedRequest]:
    """Requests in time order with exponential gaps: Poisson arrivals at `rate` per second."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    rng = random.Random(seed)
    at = rng.expovariate(rate)
    while at < duration_s:
        tenant = rng.choice(tenants)
        endpoint = _weighted(rng, tenant.endpoints)
        active = [s for s in scenarios if s.active(at, tenant.name)]
        yield _request(rng, at, tenant, endpoint, active, ticket_text, risk_features, bulk_size)
        at += rng.expovariate(rate)


def _request(
    rng: random.Random,
    at: float,
    tenant: TenantProfile,
    endpoint: str,
    active: Sequence[Scenario],
    ticket_text: TicketSource,
    risk_features: RiskSource,
    bulk_size: tuple[int, int],
) -> PlannedRequest:
    affected = {s.kind: s for s in active if rng.random() < s.intensity}

    def ticket() -> str:
        if "confidence_drop" in affected:
            return _unfamiliar_ticket(rng)
        shift = affected.get("class_shift")
        category = shift.target_class if shift else _maybe_weighted(rng, tenant.categories)
        return ticket_text(rng, category)

    body: dict[str, Any]
    if endpoint == "classify_ticket":
        body = {"text": ticket()}
    elif endpoint == "classify_tickets":
        body = {"tickets": [ticket() for _ in range(rng.randint(*bulk_size))]}
    else:
        body = {"features": risk_features(rng)}
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    if "error_burst" in affected:
        headers[FAULT_HEADER] = "model_error"
    elif "latency_regression" in affected:
        headers[FAULT_HEADER] = "latency=300"
    return PlannedRequest(at, tenant.name, endpoint, body, headers)


def _weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def _maybe_weighted(rng: random.Random, weights: Mapping[str, float] | None) -> str | None:
    return _weighted(rng, weights) if weights else None


def _unfamiliar_ticket(rng: random.Random) -> str:
    words = rng.choices(UNFAMILIAR_WORDS, k=rng.randint(6, 30))
    return " ".join(words).capitalize() + "."


@dataclass
class TrafficSummary:
    """What was sent and how the service answered."""

    sent: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    answered_request_ids: list[str] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.by_status.values())


async def send_traffic(
    plan: Iterator[PlannedRequest],
    base_url: str,
    *,
    concurrency: int = 32,
    timeout_s: float = 30.0,
    on_response: Callable[[PlannedRequest, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TrafficSummary:
    """Send each planned request at its time (relative to now), at most `concurrency` at once."""
    summary = TrafficSummary()
    limit = asyncio.Semaphore(concurrency)
    started = clock()
    client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
    async with client:
        tasks = []
        for request in plan:
            delay = request.at_s - (clock() - started)
            if delay > 0:
                await asyncio.sleep(delay)
            await limit.acquire()
            tasks.append(asyncio.create_task(_send(client, request, limit, summary, on_response)))
        await asyncio.gather(*tasks)
    return summary


async def _send(
    client: httpx.AsyncClient,
    request: PlannedRequest,
    limit: asyncio.Semaphore,
    summary: TrafficSummary,
    on_response: Callable[[PlannedRequest, int], None] | None,
) -> None:
    try:
        summary.sent += 1
        response = await client.post(
            f"/{request.endpoint}", json=request.body, headers=request.headers
        )
        summary.by_status[response.status_code] += 1
        if rid := response.headers.get("x-request-id"):
            summary.answered_request_ids.append(rid)
        if on_response:
            on_response(request, response.status_code)
    except httpx.HTTPError:
        summary.transport_errors += 1
    finally:
        limit.release()
