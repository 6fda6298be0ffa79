"""End to end: traffic through the real service (2 workers) into PostgreSQL and /metrics."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from core.catalog import OTHER
from core.contracts import ENDPOINT_NAMES as ENDPOINTS
from storage.engine import create_store_engine
from storage.schema import predictions
from tests.conftest import require
from tests.service.conftest import KEYS, ServiceServer, auth
from tests.service.test_service_http import risk_features

TICKETS = [
    "I was charged twice for my subscription, please refund",
    "The mobile app crashes when I open settings",
    "Write to me at jane.doe@example.com about my parcel",
    "I cannot reset my password",
]


def samples(metrics_text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample values of one series name, keyed by their sorted labels."""
    values: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name:
                values[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def outcome_counts(metrics_text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for labels, value in samples(metrics_text, "servewatch_requests_total").items():
        counts[dict(labels)["outcome"]] += int(value)
    return counts


def wait_for_rows(url: str, request_ids: set[str], timeout: float = 30) -> dict[str, Any]:
    """Rows by the client's request id (a bulk request's items by their own ids)."""
    engine = create_store_engine(url)
    deadline = time.monotonic() + timeout
    client_ids = {request_id.split(":")[0] for request_id in request_ids}
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(predictions).where(predictions.c.client_request_id.in_(client_ids))
                ).mappings()
                found = {_key(row): dict(row) for row in rows}
            if len(found) >= len(request_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
    finally:
        engine.dispose()


def _key(row: Any) -> str:
    item = row["request_id"].partition(":")[2]
    return f"{row['client_request_id']}:{item}" if item else row["client_request_id"]


def send_mixed_traffic(server: ServiceServer) -> dict[str, tuple[int, dict[str, Any]]]:
    """Every kind of request once or more; returns request id -> (status, body)."""
    prefix = uuid.uuid4().hex[:10]
    features = risk_features(server)
    plan: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
    for i, text in enumerate(TICKETS):
        tenant = "acme" if i % 2 else "globex"
        plan.append(("ok-ticket", "/classify_ticket", {"text": text}, auth(tenant)))
    plan.append(("ok-bulk", "/classify_tickets", {"tickets": TICKETS}, auth("globex")))
    plan.append(
        ("ok-risk-eu", "/predict_risk", {"features": features}, {**auth(), "X-Region": "eu"})
    )
    plan.append(("unauthorized", "/classify_ticket", {"text": "x"}, {}))
    plan.append(("forbidden", "/predict_risk", {"features": features}, auth("globex")))
    plan.append(("invalid", "/classify_ticket", {"text": "x", "extra": 1}, auth()))
    plan.append(("too-large", "/classify_ticket", {"text": "y" * 9000}, auth()))
    plan.append(
        (
            "model-error",
            "/classify_ticket",
            {"text": "x"},
            {**auth(), "X-Servewatch-Fault": "model_error"},
        )
    )
    results = {}
    with server.client() as client:
        for index, (kind, path, body, headers) in enumerate(plan):
            request_id = f"{prefix}-{index:02d}-{kind}"
            answer = client.post(path, json=body, headers={**headers, "X-Request-ID": request_id})
            assert answer.headers["x-client-request-id"] == request_id  # echoed beside ours
            assert answer.headers["x-request-id"] != request_id
            results[request_id] = (answer.status_code, answer.json())
    return results


@pytest.fixture(scope="module")
def traffic(service_server: ServiceServer, service_database_url: str) -> dict[str, Any]:
    before = settled_metrics(service_server)
    results = send_mixed_traffic(service_server)
    expected_ids = set()
    for request_id, (_status, body) in results.items():
        if request_id.endswith("ok-bulk"):
            items = (item["request_id"].partition(":")[2] for item in body["predictions"])
            expected_ids |= {f"{request_id}:{item}" for item in items}
        else:
            expected_ids.add(request_id)
    rows = wait_for_rows(service_database_url, expected_ids)
    after = wait_for_metrics(service_server, before, _statuses(results))
    return {
        "results": results,
        "rows": rows,
        "expected": expected_ids,
        "before": before,
        "after": after,
    }


def test_every_answered_request_is_one_row(traffic):
    assert set(traffic["rows"]) == traffic["expected"]


def test_rows_hold_the_answers(traffic):
    rows, now = traffic["rows"], datetime.now(UTC)
    for request_id, (status, body) in traffic["results"].items():
        kind = request_id.split("-", 2)[2]
        if kind == "ok-bulk":
            for item in body["predictions"]:
                row = rows[f"{request_id}:{item['request_id'].partition(':')[2]}"]
                assert row["request_id"] == item["request_id"]
                assert (row["status"], row["predicted_class"]) == ("ok", item["predicted_class"])
                assert row["confidence"] == pytest.approx(item["confidence"])
                assert row["endpoint"] == "classify_tickets"
                assert row["tenant"] == "globex"
                assert row["model_version"] == body["model_version"]
                assert row["batch_size"] >= 1
            continue
        row = rows[request_id]
        answered_id = body["request_id"] if status == 200 else body["error"]["request_id"]
        assert row["request_id"] == answered_id
        assert now - timedelta(minutes=5) < row["ts"] <= now
        assert row["latency_ms"] > 0
        assert row["compute_ms"] >= 0
        if status == 200:
            assert row["status"] == "ok"
            assert row["predicted_class"] == body["predicted_class"]
            assert row["confidence"] == pytest.approx(body["confidence"])
            assert row["model_name"] == body["model_name"]
            assert row["model_version"] == body["model_version"]
            assert row["batch_size"] >= 1
            assert row["compute_ms"] > 0
            assert row["probabilities"] == pytest.approx(body["probabilities"])
        else:
            assert row["status"] == body["error"]["code"]
            assert row["predicted_class"] is None
            assert row["confidence"] is None


def test_rows_carry_the_worker_cpu_charged_to_their_request(traffic):
    rows = traffic["rows"]
    for request_id, row in rows.items():
        assert row["busy_ms"] > 0, request_id  # errors too: the worker spent time on them
    bulk = [row["busy_ms"] for key, row in rows.items() if key.split(":")[0].endswith("ok-bulk")]
    assert len(bulk) == len(TICKETS)
    assert bulk == pytest.approx([bulk[0]] * len(bulk))  # one request's share, split equally


def test_rows_carry_tenant_region_and_redacted_inputs(traffic):
    by_kind = {
        rid.split("-", 2)[2]: row for rid, row in traffic["rows"].items() if "ok-bulk" not in rid
    }
    assert by_kind["unauthorized"]["tenant"] == OTHER
    assert by_kind["forbidden"]["tenant"] == "globex"
    assert by_kind["ok-risk-eu"]["region"] == "eu"
    assert by_kind["ok-risk-eu"]["endpoint"] == "predict_risk"
    stored_texts = [
        row["features"]["text"]
        for row in traffic["rows"].values()
        if row["features"] and "text" in row["features"]
    ]
    assert len(stored_texts) == 2 * len(TICKETS)  # store_raw_inputs is on in the test config
    assert not any("jane.doe@example.com" in text for text in stored_texts)
    assert by_kind["model-error"]["status"] == "model_error"
    assert by_kind["too-large"]["status"] == "payload_too_large"


def _statuses(results: dict[str, tuple[int, Any]]) -> Counter[str]:
    return Counter(
        "ok" if status == 200 else body["error"]["code"] for status, body in results.values()
    )


def settled_metrics(server: ServiceServer) -> str:
    """/metrics once the counts of earlier requests are written (a worker that answered one
    last writes it within its 1 s flush interval): two reads a flush interval apart agree."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for _ in range(10):
        time.sleep(1.2)
        again = httpx.get(f"{server.url}/metrics", timeout=10).text
        if outcome_counts(again) == outcome_counts(text):
            return again
        text = again
    return text


def wait_for_metrics(server: ServiceServer, before: str, expected: Counter[str]) -> str:
    """/metrics once every worker has written its counts (each flushes within 1 s)."""
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        if outcome_counts(text) - outcome_counts(before) == expected:
            return text
        if time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_metrics_count_every_request_across_workers(traffic):
    delta = outcome_counts(traffic["after"]) - outcome_counts(traffic["before"])
    assert delta == _statuses(traffic["results"])


def test_metric_labels_stay_bounded(service_server):
    with service_server.client() as client:
        for i in range(10):
            client.get(f"/probe-{i}")
            client.post(
                "/classify_ticket", json={"text": "x"}, headers={"Authorization": f"Bearer k{i}"}
            )
    text = httpx.get(f"{service_server.url}/metrics", timeout=10).text
    tenants, endpoints = set(), set()
    for name in ("servewatch_requests_total", "servewatch_request_duration_seconds_count"):
        for labels in samples(text, name):
            label_map = dict(labels)
            tenants.add(label_map["tenant"])
            endpoints.add(label_map["endpoint"])
    assert tenants <= {"acme", "globex", OTHER}
    assert endpoints <= {*ENDPOINTS, OTHER}
    info = samples(text, "servewatch_model_info")
    assert {dict(labels)["provider"] for labels in info} == {"CPUExecutionProvider"}


def test_promtool_finds_nothing_to_report(service_server):
    require(shutil.which("promtool") is not None, "promtool is not installed")
    text = httpx.get(f"{service_server.url}/metrics", timeout=10).text
    assert "servewatch_requests_total" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result
    assert (result.stdout, result.stderr) == (b"", b""), result


def _series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_no_request_of_any_kind_creates_a_series(service_server):
    """1,000 hostile requests (random paths, methods, keys, regions, ids), after a first round of
    the same kinds with other values has made every series a request can legitimately touch:
    BentoML's own path-labelled metrics are off and the catalog's labels are bounded."""
    rng = random.Random(7)
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def hostile(client: httpx.Client, i: int) -> None:
        headers = {
            "Authorization": f"Bearer {rng.choice(['-', 'k' + str(i), KEYS['acme']])}",
            "X-Region": rng.choice(["eu", "us", f"r{i}", "x" * 200]),
            "X-Request-ID": uuid.uuid4().hex if i % 2 else f"id:{i}",
        }
        path = rng.choice(["/classify_ticket", "/predict_risk", "/readyz", "/metrics", "/"])
        path = path if i % 3 else f"/x{i}/{uuid.uuid4().hex[:6]}"
        body = {"text": "x" * rng.randint(0, 3)} if i % 4 else {"tickets": [i]}
        client.request(rng.choice(methods), path, json=body, headers=headers)

    legit = [
        ("/classify_ticket", {"text": "I was charged twice"}),
        ("/classify_tickets", {"tickets": ["refund please", "app crashes"]}),
        ("/predict_risk", {"features": risk_features(service_server)}),
    ]
    with service_server.client(timeout=10) as client:
        for _ in range(4):  # both workers answer each tenant and endpoint at least once
            for tenant in KEYS:
                for path, body in legit:
                    client.post(path, json=body, headers=auth(tenant))
        for i in range(400):  # every hostile kind, so the series they may touch exist
            hostile(client, i)
        time.sleep(2.5)  # each worker flushes its counts within a second
        before = _series(client.get("/metrics").text)
        for i in range(400, 1400):  # other paths, keys, regions and ids than the first round
            hostile(client, i)
        time.sleep(2.5)
        after = _series(client.get("/metrics").text)
    new = sorted(after - before)
    assert new == [], new[:10]
    assert not any(name.startswith("bentoml_") for name, _ in after)


def test_a_client_id_never_names_another_tenants_record(service_server, service_database_url):
    shared = f"shared-{uuid.uuid4().hex[:12]}"
    answers = {}
    with service_server.client() as client:
        for tenant in ("acme", "globex"):
            answer = client.post(
                "/classify_ticket",
                json={"text": f"{tenant} was charged twice"},
                headers={**auth(tenant), "X-Request-ID": shared},
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-client-request-id"] == shared
            answers[tenant] = answer.json()
    assert answers["acme"]["request_id"] != answers["globex"]["request_id"]
    ids = {answers[t]["request_id"] for t in answers}
    rows = wait_for_rows(service_database_url, {shared})
    engine = create_store_engine(service_database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                select(predictions).where(predictions.c.request_id.in_(ids))
            ).mappings()
            by_id = {row["request_id"]: dict(row) for row in stored}
    finally:
        engine.dispose()
    assert rows  # found by the client's id
    for tenant, body in answers.items():
        row = by_id[body["request_id"]]
        assert (row["tenant"], row["client_request_id"]) == (tenant, shared)
        assert (row["model_version"], row["predicted_class"]) == (
            body["model_version"],
            body["predicted_class"],
        )
