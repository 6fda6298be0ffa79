"""The error envelope of DESIGN.md's contract 2, and the translation of BentoML's error bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.contracts import ERROR_MESSAGE, ERROR_STATUS, ERROR_TABLE

# The error class of a foreign answer's status; where two classes share a status (503), the
# first in the contract's table wins.
_STATUS_CODE: Mapping[int, str] = {
    status: error.code for error in reversed(ERROR_TABLE) for status in (error.status, *error.also)
}
# The statuses each error class may answer with.
_ANSWERS: Mapping[str, tuple[int, ...]] = {e.code: (e.status, *e.also) for e in ERROR_TABLE}


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
        self.message = message or ERROR_MESSAGE[code]
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
    return status if status in _ANSWERS[code] else ERROR_STATUS[code]


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
