"""The error envelope of DESIGN.md's contract 2, and the translation of BentoML's error bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from service.catalog import ERROR_CODES

# Default HTTP status of each error class; `validation_error` may also answer 422 and
# `overloaded` 429 (see the contract).
ERROR_STATUS: Mapping[str, int] = {
    "validation_error": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "payload_too_large": 413,
    "overloaded": 503,
    "timeout": 504,
    "model_error": 500,
    "not_ready": 503,
}
assert set(ERROR_STATUS) == set(ERROR_CODES)

_STATUS_CODE: Mapping[int, str] = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "not_found",
    413: "payload_too_large",
    422: "validation_error",
    429: "overloaded",
    503: "overloaded",
    504: "timeout",
}
_GENERIC_MESSAGE: Mapping[str, str] = {
    "validation_error": "the request is not valid",
    "unauthorized": "a valid API key is required (Authorization: Bearer <key>)",
    "forbidden": "this tenant may not call this endpoint",
    "not_found": "no such route",
    "payload_too_large": "the request body is too large",
    "overloaded": "the service is overloaded, retry later",
    "timeout": "the request took too long",
    "model_error": "the model failed to answer; the request id identifies it in the log",
    "not_ready": "the service is not ready",
}


class ServiceError(Exception):
    """An answer in one of the contract's error classes."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message or _GENERIC_MESSAGE[code]
        self.status = status or ERROR_STATUS[code]
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {self.message}")


def envelope(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The contract's JSON error body."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def render(error: ServiceError, request_id: str) -> bytes:
    """`error` as the bytes of an envelope body."""
    return json.dumps(
        envelope(error.code, error.message, request_id), separators=(",", ":")
    ).encode()


def translate(status: int, body: bytes) -> ServiceError:
    """The contract error for an error answer written by BentoML or Starlette."""
    code = _STATUS_CODE.get(status)
    if code is None:
        code = "model_error" if status >= 500 else "validation_error"
    # BentoML hides 5xx details on purpose; so do we (the log has them).
    message = _validation_message(body) if code == "validation_error" else None
    if status == 405:
        # HTTP wants 405 for a known path with the wrong method; the envelope says not_found.
        return ServiceError(code, "this method is not allowed on this route", status=405)
    return ServiceError(code, message, status=_contract_status(code, status))


def _contract_status(code: str, status: int) -> int:
    if code == "validation_error" and status in (400, 422):
        return status
    if code == "overloaded" and status in (429, 503):
        return status
    return ERROR_STATUS[code]


def _validation_message(body: bytes) -> str | None:
    """A readable summary of a pydantic error list in a BentoML 400 body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # BentoMLException bodies are one-element arrays
    if not isinstance(data, dict):
        return None
    details = data.get("detail")
    if isinstance(details, list) and details:
        return describe_validation(details)
    error = data.get("error")
    return error if isinstance(error, str) else None


def describe_validation(details: Sequence[Any]) -> str:
    """One line from pydantic's error list: `field: message; ...` (inputs are never echoed)."""
    return "; ".join(_describe_detail(d) for d in details[:10] if isinstance(d, Mapping))


def _describe_detail(detail: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in detail.get("loc", ()) if part != "body")
    message = str(detail.get("msg", "invalid value"))
    return f"{location or 'body'}: {message}"
