import json

import pytest

from core.contracts import ERROR_CODES
from service.errors import (
    ERROR_STATUS,
    ServiceError,
    describe_validation,
    envelope,
    render,
    translate,
)


def test_every_error_class_has_a_status_and_renders_the_envelope():
    assert set(ERROR_STATUS) == set(ERROR_CODES)
    for code in ERROR_CODES:
        error = ServiceError(code)
        body = json.loads(render(error, "req-1"))
        assert body == envelope(code, error.message, "req-1")
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "request_id"}
        assert error.status == ERROR_STATUS[code]


def test_unknown_error_code_is_refused():
    with pytest.raises(ValueError, match="unknown error code"):
        ServiceError("teapot")


@pytest.mark.parametrize(
    ("status", "code", "contract_status"),
    [
        (400, "validation_error", 400),
        (422, "validation_error", 422),
        (415, "validation_error", 400),
        (401, "unauthorized", 401),
        (403, "forbidden", 403),
        (404, "not_found", 404),
        (405, "not_found", 405),
        (413, "payload_too_large", 413),
        (429, "overloaded", 429),
        (503, "overloaded", 503),
        (504, "timeout", 504),
        (500, "model_error", 500),
        (502, "model_error", 500),
    ],
)
def test_foreign_error_answers_map_to_the_contract(status, code, contract_status):
    error = translate(status, b'{"error": "An unexpected error has occurred"}')
    assert (error.code, error.status) == (code, contract_status)


def test_bentoml_validation_detail_becomes_a_readable_message():
    body = json.dumps(
        {
            "error": "2 validation errors for TicketRequestIODescriptor",
            "detail": [
                {"type": "missing", "loc": ["text"], "msg": "Field required"},
                {
                    "type": "extra_forbidden",
                    "loc": ["colour"],
                    "msg": "Extra inputs are not permitted",
                },
            ],
        }
    ).encode()
    error = translate(400, body)
    assert error.message == "text: Field required; colour: Extra inputs are not permitted"


def test_bentoml_exception_arrays_and_hidden_5xx_messages_do_not_leak():
    assert translate(400, b'[{"error": "bad media type"}]').message == "bad media type"
    hidden = translate(500, b'{"error": "An unexpected error has occurred, check the log"}')
    assert "unexpected" not in hidden.message
    assert hidden.code == "model_error"
    assert translate(404, b"Not Found").message == "no such route"


def test_validation_messages_never_echo_inputs_and_stay_bounded():
    details = [{"loc": ["tickets", i], "msg": "too long", "input": "secret"} for i in range(50)]
    message = describe_validation(details)
    assert "secret" not in message
    assert message.count(";") == 9
    assert describe_validation([{"loc": [], "msg": "Invalid JSON"}]) == "body: Invalid JSON"
