"""The `predictions` rows of a finished request, in `PREDICTION_COLUMNS` order, and the inputs
they are completed with off the request path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.contracts import ENDPOINT_TABLE, PREDICTION_COLUMNS
from service.instrumentation import RequestTrace

BULK_ENDPOINTS = frozenset(endpoint.name for endpoint in ENDPOINT_TABLE if endpoint.bulk)


def prediction_rows(
    trace: RequestTrace,
    status: str,
    latency_s: float,
    *,
    store_raw_inputs: bool,
    redact: Callable[[str], str],
    digest: Callable[[Any], str] | None = None,
    error_message: str | None = None,
) -> list[list[Any]]:
    """The `predictions` rows of a finished request, in `PREDICTION_COLUMNS` order.

    A successful bulk request gives one row per item (`<request id>:<index>`); anything else
    gives one row under the request id, errors with no class and the compute they did use.
    The worker's CPU charged to the request (`busy_seconds`) is shared equally by its rows.
    `digest` makes each input's HMAC for the audit log (None: no audit key configured).
    Rows, not dicts: the prediction log's writer makes one per answered request. Their order
    (and width: `storage.writer.prediction_record` refuses another) is pinned by a test.
    """
    t = trace
    latency_ms = latency_s * 1000.0
    if status != "ok":
        compute_ms = sum(i.compute_seconds for i in t.items) * 1000.0
        batch_size = max((i.batch_size for i in t.items), default=0)
        return [
            [
                t.request_id,
                t.received_at,
                t.tenant,
                t.endpoint,
                t.model_name,
                t.model_version,
                None,
                None,
                latency_ms,
                compute_ms,
                batch_size,
                status,
                t.region,
                t.resource_class,
                None,
                None,
                error_message,
                t.client_request_id,
                _digest_of(t.items[0].raw_input, digest) if t.items else None,
                t.busy_seconds * 1000.0,
            ]
        ]
    bulk = t.endpoint in BULK_ENDPOINTS
    busy_ms = t.busy_seconds * 1000.0 / max(len(t.items), 1)
    return [
        [
            f"{t.request_id}:{index}" if bulk else t.request_id,
            t.received_at,
            t.tenant,
            t.endpoint,
            t.model_name,
            t.model_version,
            item.predicted_class,
            item.confidence,
            latency_ms,
            item.compute_seconds * 1000.0,
            item.batch_size,
            status,
            t.region,
            t.resource_class,
            item.probabilities,
            _stored_input(item.raw_input, redact) if store_raw_inputs else None,
            None,
            t.client_request_id,
            _digest_of(item.raw_input, digest),
            busy_ms,
        ]
        for index, item in enumerate(t.items)
    ]


_STATUS = PREDICTION_COLUMNS.index("status")
_FEATURES = PREDICTION_COLUMNS.index("features")
_INPUT_HMAC = PREDICTION_COLUMNS.index("input_hmac")


def fill_inputs(
    rows: list[list[Any]],
    trace: RequestTrace,
    *,
    store_raw_inputs: bool,
    redact: Callable[[str], str],
    digest: Callable[[Any], str] | None,
) -> None:
    """Complete rows made without their inputs (for the journal, on the request path) with the
    redacted input and its digest, as `prediction_rows` would have made them."""
    ok = bool(rows) and rows[0][_STATUS] == "ok"
    items = trace.items if ok else trace.items[:1]
    for row, item in zip(rows, items, strict=False):
        if ok and store_raw_inputs:
            row[_FEATURES] = _stored_input(item.raw_input, redact)
        row[_INPUT_HMAC] = _digest_of(item.raw_input, digest)


def _digest_of(raw: Any, digest: Callable[[Any], str] | None) -> str | None:
    return None if digest is None or raw is None else digest(raw)


def _stored_input(raw: Any, redact: Callable[[str], str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return {"text": redact(raw)}
    return dict(raw)
