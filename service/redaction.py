"""Redaction: mask e-mail addresses, IBANs, card and phone numbers, and configured patterns in
free text before it is stored.

Numbers are masked only when they are what they look like: an IBAN when its mod-97 check holds,
a card number when its Luhn check holds (python-stdnum), a phone number when libphonenumber's
matcher finds it valid for one of the configured regions, or possible and written as a phone
number (international or trunk prefix, or area code in parentheses, and ten digits or more). Order
numbers, dates, versions and amounts survive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import phonenumbers
from stdnum import iban, luhn

from core.config import RedactionConfig

Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Candidates are greedy; the longest prefix that passes the checksum is masked.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_PHONE_LOOKING = re.compile(r"[+(0]")
# Seven digits or more, with the separators phone numbers are written with.
_CONTEXT = 10
_PHONE_CANDIDATE = re.compile(r"\+?\(?\d(?:[ ().\-/]{0,3}\d){6,}")
_MIN_WRITTEN_PHONE_DIGITS = 10


class Redactor:
    """Applies the configured detectors in order, then the extra patterns; each match becomes
    `[NAME]`. Whitespace a pattern consumes at either end of a match is kept around the mask."""

    def __init__(self, config: RedactionConfig) -> None:
        self._finders: list[tuple[Finder, str]] = [
            (_detector(name, config.phone_regions), f"[{name.upper()}]")
            for name in config.detectors
        ]
        for name, pattern in config.patterns.items():
            self._finders.append((_pattern_finder(name, pattern), f"[{name.upper()}]"))

    def redact(self, text: str) -> str:
        """`text` with every sensitive match masked."""
        for find, mask in self._finders:
            spans = _merged(find(text))
            for start, end in reversed(spans):
                text = f"{text[:start]}{_masked(text[start:end], mask)}{text[end:]}"
        return text


def _detector(name: str, phone_regions: list[str]) -> Finder:
    if name == "email":
        return lambda text: (m.span() for m in _EMAIL.finditer(text))
    if name == "iban":
        return lambda text: _checked(_IBAN, text, iban.is_valid)
    if name == "card":
        return lambda text: _checked(_CARD, text, _is_card)
    if name == "phone":
        return _phone_finder(phone_regions)
    raise ValueError(f"unknown redaction detector {name!r}")


def _pattern_finder(name: str, pattern: str) -> Finder:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"redaction pattern {name!r} is not a valid regex: {exc}") from exc
    if compiled.search(""):
        raise ValueError(f"redaction pattern {name!r} matches the empty string")
    return lambda text: (m.span() for m in compiled.finditer(text))


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _checked(pattern: re.Pattern[str], text: str, valid: Callable[[str], bool]) -> Iterator[Span]:
    """Spans of the longest prefix of each candidate, cut at a separator, that is valid."""
    for match in pattern.finditer(text):
        candidate = match.group()
        ends = [i for i in range(len(candidate), 0, -1) if _cut_at(candidate, i)]
        for end in ends:
            if valid(candidate[:end]):
                yield match.start(), match.start() + end
                break


def _cut_at(candidate: str, end: int) -> bool:
    return candidate[end - 1].isalnum() and (end == len(candidate) or not candidate[end].isalnum())


def _phone_finder(regions: list[str]) -> Finder:
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(
            f"redaction.phone_regions: {unknown[0]!r} is not a region libphonenumber knows"
        )

    def find(text: str) -> Iterator[Span]:
        # libphonenumber's matcher scans all the text it is given, once per region and
        # leniency: hand it only the runs of digits that could be a phone number, with some
        # context on either side (it refuses numbers glued to letters, dates and times).
        for candidate in _PHONE_CANDIDATE.finditer(text):
            offset = max(candidate.start() - _CONTEXT, 0)
            window = text[offset : candidate.end() + _CONTEXT]
            for start, end in _phone_spans(window, candidate.group(), regions):
                yield offset + start, offset + end

    return find


def _phone_spans(window: str, candidate: str, regions: list[str]) -> list[Span]:
    """Phone numbers in `window`: valid in a region, else possible and written as a phone."""
    # A number written with its country code reads the same in every region.
    tried = regions[:1] if candidate.startswith("+") else regions
    for region in tried:
        spans = [(m.start, m.end) for m in _matches(window, region, phonenumbers.Leniency.VALID)]
        if spans:
            return spans
    if _PHONE_LOOKING.match(candidate) is None:
        return []
    for region in tried:
        matches = _matches(window, region, phonenumbers.Leniency.POSSIBLE)
        spans = [(m.start, m.end) for m in matches if _written_as_phone(m.raw_string)]
        if spans:
            return spans
    return []


def _matches(text: str, region: str, leniency: int) -> list[phonenumbers.PhoneNumberMatch]:
    return list(phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency))


def _written_as_phone(raw: str) -> bool:
    digits = sum(c.isdigit() for c in raw)
    return digits >= _MIN_WRITTEN_PHONE_DIGITS and _PHONE_LOOKING.match(raw) is not None


def _merged(spans: Iterator[Span]) -> list[Span]:
    """Overlapping spans (the same number found for two regions) joined, in order."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _masked(matched: str, mask: str) -> str:
    core = matched.strip()
    if not core:
        return matched
    start = matched.index(core)
    return f"{matched[:start]}{mask}{matched[start + len(core) :]}"
