import asyncio
import itertools
import statistics

import httpx
import pytest

from service.faults import FAULT_HEADER, Fault, parse_fault
from service.traffic import (
    DEMO_TENANTS,
    UNFAMILIAR_WORDS,
    Scenario,
    TrafficSummary,
    plan_traffic,
    send_traffic,
)


def ticket(rng, category):
    return f"{category or 'any'} ticket {rng.randint(0, 9)}"


def risk(rng):
    return {"account_age_days": float(rng.randint(1, 900))}


def plan(**kwargs):
    defaults = dict(ticket_text=ticket, risk_features=risk, seed=3)
    return list(plan_traffic(DEMO_TENANTS, **{**defaults, **kwargs}))


def test_plan_is_seeded_and_poisson():
    first = plan(rate=50, duration_s=60)
    assert first == plan(rate=50, duration_s=60)
    assert first != plan(rate=50, duration_s=60, seed=4)
    gaps = [b.at_s - a.at_s for a, b in itertools.pairwise(first)]
    # Exponential inter-arrivals: mean 1/rate, standard deviation close to the mean.
    assert statistics.mean(gaps) == pytest.approx(1 / 50, rel=0.1)
    assert statistics.stdev(gaps) == pytest.approx(statistics.mean(gaps), rel=0.15)
    assert all(0 <= r.at_s < 60 for r in first)


def test_tenants_keep_their_endpoint_mix():
    requests = plan(rate=100, duration_s=60)
    globex = [r for r in requests if r.tenant == "globex"]
    assert globex
    assert all(r.endpoint != "predict_risk" for r in globex)
    for r in requests:
        assert r.headers["Authorization"].startswith("Bearer demo-")
        assert (
            set(r.body)
            == {
                "classify_ticket": {"text"},
                "classify_tickets": {"tickets"},
                "predict_risk": {"features"},
            }[r.endpoint]
        )


def test_class_shift_hits_one_tenant_from_its_start():
    shift = Scenario("class_shift", start_s=30, tenant="acme", target_class="shipping", intensity=1)
    requests = plan(rate=100, duration_s=60, scenarios=[shift])

    def shipping(r):
        return r.endpoint == "classify_ticket" and r.body["text"].startswith("shipping")

    after = [
        r
        for r in requests
        if r.tenant == "acme" and r.at_s >= 30 and r.endpoint == "classify_ticket"
    ]
    assert after
    assert all(shipping(r) for r in after)
    others = [r for r in requests if r.tenant != "acme" and r.endpoint == "classify_ticket"]
    assert sum(shipping(r) for r in others) < len(others) / 2


def test_confidence_drop_uses_unfamiliar_words_and_faults_set_headers():
    scenarios = [
        Scenario("confidence_drop", start_s=0, duration_s=10, intensity=1),
        Scenario("error_burst", start_s=20, duration_s=10, intensity=1),
        Scenario("latency_regression", start_s=40, intensity=1),
    ]
    requests = plan(rate=50, duration_s=60, scenarios=scenarios)
    early = [r for r in requests if r.at_s < 10 and r.endpoint == "classify_ticket"]
    assert all(
        set(r.body["text"].lower().rstrip(".").split()) <= set(UNFAMILIAR_WORDS) for r in early
    )
    assert all(r.headers.get(FAULT_HEADER) == "model_error" for r in requests if 20 <= r.at_s < 30)
    assert all(r.headers.get(FAULT_HEADER) == "latency=300" for r in requests if r.at_s >= 40)
    assert not any(FAULT_HEADER in r.headers for r in requests if 10 <= r.at_s < 20)


def test_parse_fault():
    assert parse_fault("model_error") == Fault(error="model_error")
    assert parse_fault(" Timeout ") == Fault(error="timeout")
    assert parse_fault("latency=250") == Fault(latency_ms=250)
    assert parse_fault("latency=999999").latency_ms == 5000
    assert parse_fault("drop_table") is None
    assert parse_fault(None) is None


def test_a_fault_may_hit_one_model_version_only():
    slow = parse_fault("latency=80@3f2a9c")
    assert slow == Fault(latency_ms=80, version="3f2a9c")
    assert slow.hits("3f2a9c")
    assert not slow.hits("0b1d77")
    assert parse_fault("model_error@3f2a9c") == Fault(error="model_error", version="3f2a9c")
    assert parse_fault("timeout").hits("any version")


def test_send_traffic_counts_answers():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        code = 200 if request.headers.get(FAULT_HEADER) is None else 500
        return httpx.Response(code, headers={"x-request-id": f"r{len(seen)}"})

    requests = plan(rate=200, duration_s=0.5, scenarios=[Scenario("error_burst", intensity=0.5)])
    transport = httpx.MockTransport(handler)

    async def run() -> TrafficSummary:
        return await send_traffic(iter(requests), "http://service.test", transport=transport)

    summary = asyncio.run(run())
    assert summary.sent == summary.answered == len(requests) == len(seen)
    assert summary.by_status[500] == sum(FAULT_HEADER in r.headers for r in requests)
    assert len(summary.answered_request_ids) == len(requests)
