"""Redaction: mask configured sensitive patterns (e-mail addresses, card and phone numbers) in
free text before it is stored."""

from __future__ import annotations

import re
from collections.abc import Mapping


class Redactor:
    """Replaces every match of each named pattern with `[NAME]`, patterns applied in order.

    Whitespace a pattern consumes at either end of a match is kept around the mask, so that
    patterns ending in an optional separator do not glue the mask to the next word.
    """

    def __init__(self, patterns: Mapping[str, str]) -> None:
        self._rules: list[tuple[re.Pattern[str], str]] = []
        for name, pattern in patterns.items():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redaction pattern {name!r} is not a valid regex: {exc}") from exc
            if compiled.search(""):
                raise ValueError(f"redaction pattern {name!r} matches the empty string")
            self._rules.append((compiled, f"[{name.upper()}]"))

    def redact(self, text: str) -> str:
        """`text` with every sensitive match masked."""
        for pattern, mask in self._rules:
            text = pattern.sub(_Masker(mask), text)
        return text


class _Masker:
    """re.sub replacement: the mask, keeping whitespace the match has at either end."""

    def __init__(self, mask: str) -> None:
        self.mask = mask

    def __call__(self, match: re.Match[str]) -> str:
        return _masked(match.group(), self.mask)


def _masked(matched: str, mask: str) -> str:
    core = matched.strip()
    if not core:
        return matched
    start = matched.index(core)
    return f"{matched[:start]}{mask}{matched[start + len(core) :]}"
