"""Redaction of ticket text before it is stored, with the configured default patterns."""

from __future__ import annotations

import pytest

from core.config import RedactionConfig, load_app_config
from service.redaction import Redactor


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactionConfig().patterns)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+billing@example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 was charged twice", "card [CARD] was charged twice"),
        ("card 4111-1111-1111-1111.", "card [CARD]."),
        ("card 4111111111111111", "card [CARD]"),
        ("call me on +44 20 7946 0958 please", "call me on [PHONE] please"),
        ("call 555-123-4567 now", "call [PHONE] now"),
        ("my printer is broken", "my printer is broken"),
        ("", ""),
    ],
)
def test_default_patterns_mask_emails_cards_and_phones(redactor, text, expected):
    assert redactor.redact(text) == expected


def test_every_occurrence_is_masked_and_the_rest_kept(redactor):
    text = "a@b.io and c@d.io paid with 5500 0000 0000 0004; reach +1 415 555 0100."
    assert redactor.redact(text) == "[EMAIL] and [EMAIL] paid with [CARD]; reach [PHONE]."


def test_no_sensitive_digits_survive(redactor):
    text = "refund 4111 1111 1111 1111 to bob@example.com, phone 030 1234 5678"
    redacted = redactor.redact(text)
    assert "4111" not in redacted and "bob@" not in redacted and "1234" not in redacted


def test_configured_patterns_replace_the_defaults(tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text(
        "redaction:\n  patterns:\n    order_id: 'ORD-\\d{6}'\n    iban: '\\bDE\\d{20}\\b'\n"
    )
    patterns = load_app_config(config).redaction.patterns
    redactor = Redactor(patterns)
    assert (
        redactor.redact("ORD-123456 paid from DE89370400440532013000")
        == "[ORDER_ID] paid from [IBAN]"
    )
    assert redactor.redact("mail a@b.io") == "mail a@b.io"


def test_whitespace_a_pattern_swallows_stays_around_the_mask():
    redactor = Redactor({"code": r"\s?X\d+\s*"})
    assert redactor.redact("a X12  b") == "a [CODE]  b"
    assert redactor.redact("X7\tend") == "[CODE]\tend"


def test_patterns_apply_in_configured_order():
    digits_first = Redactor({"number": r"\d+", "card": r"(?:\d[ -]?){13,19}"})
    assert digits_first.redact("4111 1111 1111 1111") == "[NUMBER] [NUMBER] [NUMBER] [NUMBER]"
    cards_first = Redactor({"card": r"(?:\d[ -]?){13,19}", "number": r"\d+"})
    assert cards_first.redact("4111 1111 1111 1111 x 42") == "[CARD] x [NUMBER]"


@pytest.mark.parametrize("pattern", ["(unclosed", "a*"])
def test_invalid_or_empty_matching_patterns_are_refused_by_name(pattern):
    with pytest.raises(ValueError, match="'broken'"):
        Redactor({"broken": pattern})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me at (555) 123-4567 today", "call me at [PHONE] today"),
        ("card 4111 1111 1111 1111, thanks", "card [CARD], thanks"),
        ("order #48213 on 2024-01-15", "order #48213 on 2024-01-15"),
        ("mail jane.doe@example.com or +44 20 7946 0958", "mail [EMAIL] or [PHONE]"),
    ],
)
def test_default_patterns_mask_contacts_and_cards_but_not_dates_or_orders(text, expected):
    from core.config import RedactionConfig

    assert Redactor(RedactionConfig().patterns).redact(text) == expected
