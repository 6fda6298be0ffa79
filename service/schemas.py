"""Request and response bodies of the business endpoints (strict: unknown fields are rejected)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.config import LimitsConfig
from service.routing import REGION_PATTERN

MAX_FEATURES = 64
FEATURE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# Feature values are finite and of a magnitude no real feature reaches; per-feature ranges are
# the model's business (checked against its metadata at request time).
FEATURE_BOUND = 1e12

FeatureName = Annotated[str, StringConstraints(pattern=FEATURE_NAME_PATTERN)]
FeatureValue = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-FEATURE_BOUND, le=FEATURE_BOUND)
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class RequestSchemas:
    """The request models, with lengths and counts taken from the configured limits."""

    ticket: type[BaseModel]
    tickets: type[BaseModel]
    risk: type[BaseModel]


def request_schemas(limits: LimitsConfig) -> RequestSchemas:
    """Build the request models for `limits` (max ticket length, max bulk items)."""
    # pattern: at least one non-blank character (pydantic patterns search, they don't anchor).
    ticket_text = Annotated[
        str,
        StringConstraints(
            strict=True, min_length=1, max_length=limits.max_ticket_chars, pattern=r"\S"
        ),
        Field(description="Ticket text (subject and body)."),
    ]

    class TicketRequest(_Strict):
        """One support ticket to classify."""

        text: ticket_text

    class TicketsRequest(_Strict):
        """Support tickets to classify in bulk; answers keep the order."""

        tickets: Annotated[
            list[ticket_text],
            Field(min_length=1, max_length=limits.max_bulk_items),
        ]

    class RiskRequest(_Strict):
        """Named numeric features of one account; the model's feature set must match exactly."""

        features: Annotated[
            dict[FeatureName, FeatureValue],
            Field(
                min_length=1,
                max_length=MAX_FEATURES,
                json_schema_extra={"additionalProperties": False},
            ),
        ]

    return RequestSchemas(ticket=TicketRequest, tickets=TicketsRequest, risk=RiskRequest)


class Prediction(_Strict):
    """One decision: the class, its probability, all class probabilities, and who decided."""

    request_id: str
    model_name: str
    model_version: str
    predicted_class: str
    confidence: Probability
    probabilities: dict[str, Probability]


class ItemPrediction(_Strict):
    """One item of a bulk answer; its request id is `<request id>:<index>`."""

    request_id: str
    predicted_class: str
    confidence: Probability
    probabilities: dict[str, Probability]


class BulkPrediction(_Strict):
    """Decisions for a list of items, in the order of the request."""

    request_id: str
    model_name: str
    model_version: str
    predictions: list[ItemPrediction]


class ErrorDetail(_Strict):
    code: str
    message: str
    request_id: str


class ErrorEnvelope(_Strict):
    """Every non-2xx answer (DESIGN.md contract 2)."""

    error: ErrorDetail


# -- OpenAPI: what BentoML's generated document cannot know ---------------------------------

ERROR_RESPONSES: dict[str, str] = {
    "400": "validation_error: malformed JSON, unknown field, length or range violated",
    "401": "unauthorized: missing or unknown API key",
    "403": "forbidden: this tenant may not call this endpoint",
    "404": "not_found",
    "413": "payload_too_large: body above the configured limit",
    "422": "validation_error: valid JSON that the routed model cannot take (e.g. its features)",
    "429": "overloaded",
    "500": "model_error: the model failed or its output broke the output schema",
    "503": "overloaded (queue full, retry after a second) or not_ready",
    "504": "timeout",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
_REQUEST_ID_HEADER = {
    "description": "Request id (also in the body); stored with the prediction.",
    "schema": {"type": "string"},
}


def openapi_overlay(
    spec: dict[str, Any],
    business_paths: Iterable[str],
    *,
    risk_features: Sequence[str] | None = None,
) -> dict[str, Any]:
    """BentoML's OpenAPI document plus bearer auth, the error envelope and our headers.

    `risk_features`, when every model the risk route may use takes the same features, makes the
    documented request exact (those names, all required) instead of any well-formed names.
    """
    spec = json.loads(json.dumps(spec))  # BentoML mixes int and str status keys
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of a tenant (the config holds its SHA-256).",
    }
    schemas = components.setdefault("schemas", {})
    envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorEnvelope"] = envelope
    error = {"content": {"application/json": {"schema": _ERROR_REF}}}
    for path in business_paths:
        operation = spec.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        operation["security"] = [{"bearerAuth": []}]
        operation.get("requestBody", {})["required"] = True
        operation["parameters"] = [
            _header("X-Request-ID", "Client request id (8-40 of A-Z a-z 0-9 . _ -); else new."),
            _header(
                "X-Region",
                "Region of the caller; routing rules may match it.",
                pattern=REGION_PATTERN,
            ),
        ]
        responses = {"200": operation["responses"]["200"]}
        responses["200"]["headers"] = {"X-Request-ID": _REQUEST_ID_HEADER}
        for status, description in ERROR_RESPONSES.items():
            responses[status] = {"description": description, **error}
        operation["responses"] = responses
    readyz = spec.get("paths", {}).get("/readyz", {}).get("get")
    if readyz is not None:
        readyz["responses"]["503"] = {"description": "not_ready: the failing checks", **error}
    if risk_features:
        _exact_features(spec, risk_features)
    return spec


def _exact_features(spec: dict[str, Any], names: Sequence[str]) -> None:
    operation = spec.get("paths", {}).get("/predict_risk", {}).get("post")
    if operation is None:
        return
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    value = {"type": "number", "minimum": -FEATURE_BOUND, "maximum": FEATURE_BOUND}
    body["properties"]["features"] = {
        "type": "object",
        "properties": {name: dict(value) for name in names},
        "required": list(names),
        "additionalProperties": False,
    }


def _header(name: str, description: str, *, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema,
    }
