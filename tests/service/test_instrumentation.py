from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from core.catalog import OTHER
from core.contracts import PREDICTION_COLUMNS
from service.errors import ServiceError
from service.instrumentation import Instrumentation, ItemOutcome, RequestTrace
from service.prediction_rows import prediction_rows
from service.runtime import BatchResult, ItemResult
from storage.writer import prediction_record
from tests.service.test_metric_buffer import sample_values

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Labels:
    name: str = "ticket_classifier"
    version: str = "v7"
    provider: str = "CPUExecutionProvider"
    classes: tuple[str, ...] = ("billing", "technical")
    resource_class: str = "cpu"


def _instrumentation() -> tuple[Instrumentation, CollectorRegistry]:
    registry = CollectorRegistry()
    instrumentation = Instrumentation.create(enabled=True, registry=registry, tenants=["acme"])
    instrumentation.model_loaded(Labels())
    return instrumentation, registry


def _trace(**fields) -> RequestTrace:
    trace = RequestTrace(request_id="r1", endpoint="classify_ticket", received_at=T0, started=0.0)
    trace.model_name, trace.model_version, trace.resource_class = "ticket_classifier", "v7", "cpu"
    for name, value in fields.items():
        setattr(trace, name, value)
    return trace


def _item(cls: str = "billing", confidence: float = 0.9, batch: int = 4) -> ItemOutcome:
    return ItemOutcome(cls, confidence, {cls: confidence}, batch, 0.002, raw_input="mail a@b.io")


def test_finished_request_counts_outcome_latency_compute_and_prediction():
    instrumentation, registry = _instrumentation()
    instrumentation.request_started("classify_ticket")
    trace = _trace(tenant="acme", items=[_item()])
    instrumentation.request_finished(trace, "ok", 0.05)
    labels = {"model_name": "ticket_classifier", "model_version": "v7", "tenant": "acme"}
    value = registry.get_sample_value
    assert (
        value(
            "servewatch_requests_total", {**labels, "endpoint": "classify_ticket", "outcome": "ok"}
        )
        == 1
    )
    assert (
        value("servewatch_request_duration_seconds_sum", {**labels, "endpoint": "classify_ticket"})
        == 0.05
    )
    assert value("servewatch_in_flight_requests", {"endpoint": "classify_ticket"}) == 0
    assert (
        value(
            "servewatch_compute_seconds_total",
            {**labels, "endpoint": "classify_ticket", "resource_class": "cpu"},
        )
        == 0.002
    )
    assert value("servewatch_predicted_class_total", {**labels, "predicted_class": "billing"}) == 1
    assert value("servewatch_prediction_confidence_count", labels) == 1


def test_busy_seconds_count_overlapping_requests_once():
    now = [0.0]
    registry = CollectorRegistry()
    instrumentation = Instrumentation.create(
        enabled=True, registry=registry, tenants=["acme"], clock=lambda: now[0]
    )
    busy = {"endpoint": "classify_ticket"}

    def at(t: float, event: str) -> float | None:
        now[0] = t
        if event == "start":
            instrumentation.request_started("classify_ticket")
        else:
            instrumentation.request_finished(_trace(tenant="acme"), "ok", 0.0)
        return registry.get_sample_value("servewatch_worker_busy_seconds_total", busy)

    at(0, "start")
    at(5, "start")
    assert at(10, "finish") == 10  # reported while still busy: saturation shows
    assert at(12, "finish") == 12  # [0, 10] and [5, 12] overlap: 12 s, not 17
    at(20, "start")
    assert at(21, "finish") == 13  # idle time between is not busy


def test_unknown_tenants_models_and_classes_cannot_create_series():
    instrumentation, registry = _instrumentation()
    for n in range(20):
        trace = _trace(
            tenant=f"intruder-{n}", model_version=f"unknown-{n}", items=[_item(f"class-{n}")]
        )
        trace.endpoint = f"/probe-{n}"
        instrumentation.request_started(trace.endpoint)
        instrumentation.request_finished(trace, "weird", 0.01)
    instrumentation.request_finished(_trace(tenant="acme", items=[_item("nonsense")]), "ok", 0.01)
    requests = [
        s
        for m in registry.collect()
        if m.name == "servewatch_requests"
        for s in m.samples
        if s.name == "servewatch_requests_total"
    ]
    assert {
        (s.labels["tenant"], s.labels["endpoint"], s.labels["model_version"], s.labels["outcome"])
        for s in requests
    } == {(OTHER, OTHER, OTHER, OTHER), ("acme", "classify_ticket", "v7", "ok")}
    classes = registry.get_sample_value(
        "servewatch_predicted_class_total",
        {
            "model_name": "ticket_classifier",
            "model_version": "v7",
            "tenant": "acme",
            "predicted_class": OTHER,
        },
    )
    assert classes == 1


def test_batches_report_duration_size_and_schema_failures():
    instrumentation, registry = _instrumentation()
    good = ItemResult("billing", 0.8, {"billing": 0.8, "technical": 0.2})
    result = BatchResult(
        (
            good,
            ItemResult(None, None, None, "not_normalized"),
            ItemResult(None, None, None, "made-up"),
        ),
        0.003,
    )
    instrumentation.batch_done(Labels(), result)
    instrumentation.queued(Labels(), 5)
    instrumentation.queued(Labels(), -2)
    model = {"model_name": "ticket_classifier", "model_version": "v7"}
    value = registry.get_sample_value
    assert value("servewatch_batch_size_sum", model) == 3
    assert (
        value(
            "servewatch_inference_duration_seconds_count",
            {**model, "provider": "CPUExecutionProvider"},
        )
        == 1
    )
    assert (
        value("servewatch_output_schema_failures_total", {**model, "reason": "not_normalized"}) == 1
    )
    assert value("servewatch_output_schema_failures_total", {**model, "reason": OTHER}) == 1
    assert value("servewatch_queue_depth", {"model_name": "ticket_classifier"}) == 3
    assert value("servewatch_model_info", {**model, "provider": "CPUExecutionProvider"}) == 1


def test_disabled_instrumentation_registers_nothing():
    registry = CollectorRegistry()
    instrumentation = Instrumentation.create(enabled=False, registry=registry, tenants=["acme"])
    instrumentation.model_loaded(Labels())
    instrumentation.request_started("classify_ticket")
    instrumentation.request_finished(_trace(items=[_item()]), "ok", 0.1)
    assert not instrumentation.enabled
    assert [m for m in registry.collect() if m.name.startswith("servewatch")] == []


def prediction_records(*args, **options) -> list:
    """`prediction_rows` named by column, as the store and the spill files see them."""
    return [prediction_record(row) for row in prediction_rows(*args, **options)]


def test_ok_single_request_is_one_record_with_its_decision():
    (record,) = prediction_records(
        _trace(tenant="acme", region="eu", items=[_item()]),
        "ok",
        0.012,
        store_raw_inputs=False,
        redact=str.upper,
    )
    assert record["request_id"] == "r1"
    assert record["ts"] == T0
    assert (record["predicted_class"], record["confidence"], record["status"]) == (
        "billing",
        0.9,
        "ok",
    )
    assert record["latency_ms"] == 12.0
    assert record["compute_ms"] == 2.0
    assert record["batch_size"] == 4
    assert record["region"] == "eu"
    assert record["features"] is None


def test_ok_bulk_request_is_one_record_per_item_with_indexed_ids():
    trace = _trace(
        endpoint="classify_tickets", items=[_item("billing"), _item("technical", 0.6, 2)]
    )
    records = prediction_records(
        trace, "ok", 0.02, store_raw_inputs=True, redact=lambda t: "[REDACTED]"
    )
    assert [r["request_id"] for r in records] == ["r1:0", "r1:1"]
    assert [r["predicted_class"] for r in records] == ["billing", "technical"]
    assert [r["batch_size"] for r in records] == [4, 2]
    assert records[0]["features"] == {"text": "[REDACTED]"}


def test_the_worker_cpu_charged_to_a_request_is_shared_by_its_rows():
    items = [_item("billing"), _item("technical", 0.6, 2), _item("billing")]
    bulk = _trace(endpoint="classify_tickets", items=items, busy_seconds=0.009)
    rows = prediction_records(bulk, "ok", 0.02, store_raw_inputs=False, redact=str)
    assert [r["busy_ms"] for r in rows] == pytest.approx([3.0, 3.0, 3.0])
    failed = _trace(endpoint="classify_tickets", items=items, busy_seconds=0.009)
    (row,) = prediction_records(failed, "timeout", 0.02, store_raw_inputs=False, redact=str)
    assert row["busy_ms"] == pytest.approx(9.0)  # one row carries the whole request


def test_a_trace_counts_its_own_time_on_the_loop_and_leaves_its_waits_out():
    trace = _trace(started=10.0, resumed=10.0)
    trace.pause(10.002)  # 2 ms of admission and validation, then it waits for its body
    trace.resume(10.050)
    trace.pause(10.051)  # 1 ms more, then inference
    assert trace.work_until(10.500) == pytest.approx(0.003)  # still waiting: nothing added
    trace.resume(10.600)
    assert trace.work_until(10.604) == pytest.approx(0.007)  # 4 ms to make its answer


def test_error_request_is_one_record_without_a_decision():
    trace = _trace(error=ServiceError("model_error"), items=[_item(batch=8), _item(batch=16)])
    (record,) = prediction_records(
        trace, "model_error", 0.03, store_raw_inputs=True, redact=str, error_message="broken"
    )
    assert record["predicted_class"] is None
    assert record["confidence"] is None
    assert record["status"] == "model_error"
    assert record["error_message"] == "broken"
    assert record["batch_size"] == 16
    assert record["compute_ms"] == 4.0
    (unauthorized,) = prediction_records(
        _trace(), "unauthorized", 0.001, store_raw_inputs=False, redact=str
    )
    assert unauthorized["tenant"] == OTHER
    assert unauthorized["batch_size"] == 0


def test_records_carry_every_column_of_the_predictions_table():
    trace = _trace(
        tenant="acme",
        region="eu",
        items=[_item()],
        client_request_id="client-0001",
        busy_seconds=0.006,
    )
    digest = "hmac({})".format
    common = {
        "request_id": "r1",
        "ts": T0,
        "tenant": "acme",
        "endpoint": "classify_ticket",
        "model_name": "ticket_classifier",
        "model_version": "v7",
        "latency_ms": 10.0,
        "compute_ms": 2.0,
        "batch_size": 4,
        "region": "eu",
        "resource_class": "cpu",
        "client_request_id": "client-0001",
        "input_hmac": "hmac(mail a@b.io)",
        "busy_ms": 6.0,
    }
    ok = prediction_records(
        trace, "ok", 0.01, store_raw_inputs=True, redact=str.upper, digest=digest
    )
    assert ok == [
        {
            **common,
            "predicted_class": "billing",
            "confidence": 0.9,
            "status": "ok",
            "probabilities": {"billing": 0.9},
            "features": {"text": "MAIL A@B.IO"},
            "error_message": None,
        }
    ]
    failed = prediction_records(
        trace,
        "model_error",
        0.01,
        store_raw_inputs=True,
        redact=str,
        digest=digest,
        error_message="broken",
    )
    assert failed == [
        {
            **common,
            "predicted_class": None,
            "confidence": None,
            "status": "model_error",
            "probabilities": None,
            "features": None,
            "error_message": "broken",
        }
    ]
    assert [list(r) for r in ok + failed] == [list(PREDICTION_COLUMNS)] * 2  # in table order


def _requests(instrumentation: Instrumentation) -> None:
    instrumentation.model_loaded(Labels())
    for n in range(30):
        instrumentation.request_started("classify_ticket")
        instrumentation.queued(Labels(), 1)
        good = ItemResult("billing", 0.8, {"billing": 0.8, "technical": 0.2})
        instrumentation.batch_done(Labels(), BatchResult((good,), 0.001 * n))
        instrumentation.queued(Labels(), -1)
        trace = _trace(tenant="acme", items=[_item("technical" if n % 3 else "billing", n / 30)])
        instrumentation.request_finished(trace, "ok" if n % 7 else "timeout", 0.002 * n)


def test_buffered_metrics_equal_direct_ones_once_flushed():
    now = [0.0]

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    direct, buffered = CollectorRegistry(), CollectorRegistry()
    _requests(Instrumentation.create(enabled=True, registry=direct, tenants=["acme"], clock=clock))
    now[0] = 0.0
    instrumentation = Instrumentation.create(
        enabled=True, registry=buffered, tenants=["acme"], clock=clock, flush_interval_s=1.0
    )
    _requests(instrumentation)
    assert instrumentation.buffered
    requests = {
        "endpoint": "classify_ticket",
        "model_name": "ticket_classifier",
        "model_version": "v7",
        "tenant": "acme",
        "outcome": "ok",
    }
    assert buffered.get_sample_value("servewatch_requests_total", requests) == 0
    instrumentation.flush()
    assert buffered.get_sample_value("servewatch_requests_total", requests) == 25
    assert sample_values(buffered) == sample_values(direct)


def test_a_version_loaded_later_gets_its_own_labels_not_the_cached_other():
    instrumentation, registry = _instrumentation()
    later = _trace(tenant="acme", model_version="v8", items=[_item()])
    instrumentation.request_started("classify_ticket")
    instrumentation.request_finished(later, "ok", 0.01)  # v8 not loaded yet: version `other`
    instrumentation.model_loaded(Labels(version="v8"))
    instrumentation.request_started("classify_ticket")
    instrumentation.request_finished(later, "ok", 0.01)
    labels = {"endpoint": "classify_ticket", "model_name": "ticket_classifier", "tenant": "acme"}
    value = registry.get_sample_value
    for version in (OTHER, "v8"):
        outcome = {**labels, "model_version": version, "outcome": "ok"}
        assert value("servewatch_requests_total", outcome) == 1
    predicted = {"model_name": "ticket_classifier", "model_version": "v8", "tenant": "acme"}
    billing = {**predicted, "predicted_class": "billing"}
    assert value("servewatch_predicted_class_total", billing) == 1


def test_model_calls_are_timed_counted_by_reason_and_in_flight_per_service():
    instrumentation, registry = _instrumentation()
    instrumentation.model_services(["ticket", "risk"])
    value = registry.get_sample_value
    instrumentation.model_call_started("ticket")
    instrumentation.model_call_started("ticket")
    assert value("servewatch_model_service_queue_depth", {"service": "ticket"}) == 2
    instrumentation.model_call_finished("ticket", Labels(), 0.004, None)
    instrumentation.model_call_finished("ticket", Labels(), 2.0, "timeout")
    assert value("servewatch_model_service_queue_depth", {"service": "ticket"}) == 0
    timed = {"service": "ticket", "model_name": "ticket_classifier", "model_version": "v7"}
    assert value("servewatch_model_call_duration_seconds_count", timed) == 2
    assert value("servewatch_model_call_duration_seconds_sum", timed) == pytest.approx(2.004)
    errors = {"service": "ticket", "model_name": "ticket_classifier"}
    assert value("servewatch_model_call_errors_total", {**errors, "reason": "timeout"}) == 1


def test_model_call_labels_stay_bounded():
    instrumentation, registry = _instrumentation()
    instrumentation.model_services(["ticket"])
    instrumentation.model_call_started("nosuch")
    instrumentation.model_call_finished("nosuch", Labels(name="x", version="y"), 0.1, "weird")
    value = registry.get_sample_value
    bounded = {"service": OTHER, "model_name": OTHER}
    assert value("servewatch_model_call_errors_total", {**bounded, "reason": OTHER}) == 1
    timed = {**bounded, "model_version": OTHER}
    assert value("servewatch_model_call_duration_seconds_count", timed) == 1
