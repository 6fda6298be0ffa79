"""Redaction of ticket text before it is stored: the default detectors on a corpus of texts that
must be masked and texts whose numbers must stay, and configured patterns."""

from __future__ import annotations

import pytest

from core.config import ConfigError, RedactionConfig, load_app_config
from service.redaction import Redactor


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactionConfig())


PHONES = [
    ("call me on +44 20 7946 0958 please", "call me on [PHONE] please"),
    ("my mobile is 07700 900123", "my mobile is [PHONE]"),
    ("UK mobile +44 7700 900123", "UK mobile [PHONE]"),
    ("office: 020 7946 0958", "office: [PHONE]"),
    ("from abroad 0044 20 7946 0958", "from abroad [PHONE]"),
    ("reach +1 415 555 0100.", "reach [PHONE]."),
    ("call (415) 555-0132 today", "call [PHONE] today"),
    ("or 415.555.0199 after six", "or [PHONE] after six"),
    ("toll free 1 800 555 0199", "toll free [PHONE]"),
    ("Berlin 030 1234 5678", "Berlin [PHONE]"),
    ("Durchwahl +49 30 901820", "Durchwahl [PHONE]"),
    ("portable 06 12 34 56 78", "portable [PHONE]"),
    ("France +33 6 12 34 56 78", "France [PHONE]"),
    ("India +91 98765 43210", "India [PHONE]"),
    ("Tokyo +81 3-1234-5678", "Tokyo [PHONE]"),
    ("call me at (555) 123-4567 today", "call me at [PHONE] today"),
]
IBANS = [
    ("pay GB82WEST12345698765432 now", "pay [IBAN] now"),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please"),
    ("to DE89370400440532013000.", "to [IBAN]."),
    ("to DE89 3704 0044 0532 0130 00, thanks", "to [IBAN], thanks"),
    ("FR14 2004 1010 0505 0001 3M02 606 is mine", "[IBAN] is mine"),
    ("NL91ABNA0417164300", "[IBAN]"),
    ("account ES9121000418450200051332 closed", "account [IBAN] closed"),
    ("refund to CH9300762011623852957 ok", "refund to [IBAN] ok"),
]
CARDS = [
    ("card 4111 1111 1111 1111 was charged twice", "card [CARD] was charged twice"),
    ("card 4111-1111-1111-1111.", "card [CARD]."),
    ("card 4111111111111111", "card [CARD]"),
    ("mastercard 5500 0000 0000 0004;", "mastercard [CARD];"),
    ("amex 3782 822463 10005 declined", "amex [CARD] declined"),
    ("amex 378282246310005", "amex [CARD]"),
    ("visa 4012-8888-8888-1881 expired", "visa [CARD] expired"),
    ("card 4111 1111 1111 1111 x 42", "card [CARD] x 42"),
]
EMAILS = [
    ("write to jane.doe+billing@example.co.uk today", "write to [EMAIL] today"),
    ("a@b.io and c@d.io", "[EMAIL] and [EMAIL]"),
    ("contact: ops-team@sub.example.org.", "contact: [EMAIL]."),
    ("cc: Jane <jane_o'neil@example.com>", "cc: Jane <[EMAIL]>"),
]
KEPT = [
    "order 123456789 has not arrived",
    "order #48213 on 2024-01-15",
    "version 2.14.3 broke it",
    "invoice 2024-0042 for $1,234.56",
    "quantity 250 units",
    "ticket 10045678 reopened",
    "on 15/01/2024 at 14:30",
    "build 20240115.3 failed",
    "amount 12345.67 EUR",
    "SKU 4006381333931 out of stock",
    "release 1.31.0",
    "ref 99887766",
    "tracking 1Z999AA10123456784",
    "shipped 3 of 12 boxes",
    "PO 4500012345 approved",
    "order 123-456-789",
    "ISBN 978-3-16-148410-0",
    "zip 94103",
    "tax id 12-3456789",
    "on 2024-01-15 14:30:00 it crashed",
    "card ending 4242 expired 12/27",
    "order 4111 1111 1111 1112",
    "my printer is broken",
    "",
]


@pytest.mark.parametrize(("text", "expected"), PHONES + IBANS + CARDS + EMAILS)
def test_default_detectors_mask_contacts_accounts_and_cards(redactor, text, expected):
    assert redactor.redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_numbers_that_are_not_personal_data_stay(redactor, text):
    assert redactor.redact(text) == text


def test_the_corpus_is_large_enough():
    assert len(PHONES + IBANS + CARDS + EMAILS + KEPT) >= 60
    assert len(KEPT) >= 20


def test_every_occurrence_is_masked_and_the_rest_kept(redactor):
    text = "a@b.io and c@d.io paid with 5500 0000 0000 0004; reach +1 415 555 0100."
    assert redactor.redact(text) == "[EMAIL] and [EMAIL] paid with [CARD]; reach [PHONE]."


def test_no_sensitive_digits_survive(redactor):
    text = "refund 4111 1111 1111 1111 to bob@example.com, phone 030 1234 5678"
    redacted = redactor.redact(text)
    assert "4111" not in redacted
    assert "bob@" not in redacted
    assert "1234" not in redacted


def test_configured_patterns_run_after_the_detectors(tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text("redaction:\n  patterns:\n    order_id: 'ORD-\\d{6}'\n")
    redactor = Redactor(load_app_config(config).redaction)
    assert (
        redactor.redact("ORD-123456 paid from DE89370400440532013000 by a@b.io")
        == "[ORDER_ID] paid from [IBAN] by [EMAIL]"
    )


def test_detectors_can_be_switched_off():
    redactor = Redactor(RedactionConfig(detectors=["email"]))
    assert redactor.redact("a@b.io +44 20 7946 0958") == "[EMAIL] +44 20 7946 0958"


def test_phone_regions_decide_which_national_formats_are_found():
    us_only = Redactor(RedactionConfig(detectors=["phone"], phone_regions=["US"]))
    assert us_only.redact("call (415) 555-0132") == "call [PHONE]"
    assert us_only.redact("Berlin 030 1234 5678") == "Berlin 030 1234 5678"
    assert us_only.redact("intl +49 30 901820") == "intl [PHONE]"


def test_region_codes_are_checked_at_load_and_at_start(tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text("redaction:\n  phone_regions: [uk]\n")
    with pytest.raises(ConfigError, match="phone_regions"):
        load_app_config(config)
    with pytest.raises(ValueError, match="'XX'"):
        Redactor(RedactionConfig(phone_regions=["XX"]))


def test_whitespace_a_pattern_swallows_stays_around_the_mask():
    redactor = Redactor(RedactionConfig(detectors=[], patterns={"code": r"\s?X\d+\s*"}))
    assert redactor.redact("a X12  b") == "a [CODE]  b"
    assert redactor.redact("X7\tend") == "[CODE]\tend"


def test_patterns_apply_in_configured_order():
    def only(patterns: dict[str, str]) -> Redactor:
        return Redactor(RedactionConfig(detectors=[], patterns=patterns))

    digits_first = only({"number": r"\d+", "card": r"(?:\d[ -]?){13,19}"})
    assert digits_first.redact("4111 1111 1111 1111") == "[NUMBER] [NUMBER] [NUMBER] [NUMBER]"
    cards_first = only({"card": r"(?:\d[ -]?){13,19}", "number": r"\d+"})
    assert cards_first.redact("4111 1111 1111 1111 x 42") == "[CARD] x [NUMBER]"


@pytest.mark.parametrize("pattern", ["(unclosed", "a*"])
def test_invalid_or_empty_matching_patterns_are_refused_by_name(pattern):
    with pytest.raises(ValueError, match="'broken'"):
        Redactor(RedactionConfig(patterns={"broken": pattern}))
