"""What a PromQL expression selects, so generators can refuse series the catalog lacks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from core.catalog import CATALOG, MetricSpec

# Labels every scraped series gets, whatever the catalog says.
TARGET_LABELS = frozenset({"job", "instance"})
# Prometheus' own series, allowed besides the catalog: per-target `up`, and `ALERTS` (labelled
# with each alert's own labels too, of which a selector may only name these two).
BUILTIN_SERIES: Mapping[str, frozenset[str]] = {
    "up": TARGET_LABELS,
    "ALERTS": frozenset({"alertname", "alertstate"}),
}

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end"}
)
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(?:0x[0-9a-fA-F]+|[0-9][0-9a-zA-Z_.]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+)")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*")


class PromQLSyntaxError(ValueError):
    """The expression does not tokenize (unterminated string, brace or bracket)."""


@dataclass(frozen=True)
class Selector:
    """One vector selector: its metric name (None for `{__name__=...}`) and matcher labels."""

    name: str | None
    labels: frozenset[str]


def selectors(expr: str) -> list[Selector]:
    """The vector selectors in `expr`, in order."""
    tokens = list(_tokens(expr))
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in _LABEL_LIST_KEYWORDS:
            i = _skip_label_list(tokens, i + 1)
            continue
        if kind == "ident" and _is_not_a_series(text, following):
            i += 1
            continue
        if kind == "ident":
            labels = following[1] if following[0] == "matchers" else ""
            found.append(Selector(text, _label_set(labels)))
            i += 2 if following[0] == "matchers" else 1
            continue
        if kind == "matchers":
            found.append(Selector(None, _label_set(text)))
        i += 1
    return found


def series_of(expr: str) -> set[str]:
    """Names of the series `expr` selects."""
    return {s.name for s in selectors(expr) if s.name is not None}


def catalog_labels(specs: Iterable[MetricSpec] = CATALOG) -> dict[str, frozenset[str]]:
    """Selectable series of the catalog with the labels each one has once scraped."""
    known: dict[str, frozenset[str]] = dict(BUILTIN_SERIES)
    for entry in specs:
        for series in entry.series:
            extra = {"le"} if series.endswith("_bucket") else set()
            known[series] = frozenset(entry.labels) | extra | TARGET_LABELS
    return known


def unknown_references(expr: str, known: Mapping[str, frozenset[str] | None]) -> list[str]:
    """What `expr` selects that `known` lacks: series, or labels a series does not have.

    `known` maps series names to their labels (None: any label, e.g. recorded series).
    """
    problems = []
    for selector in selectors(expr):
        if selector.name is None:
            problems.append("a selector without a metric name")
            continue
        if selector.name not in known:
            problems.append(f"unknown series {selector.name}")
            continue
        labels = known[selector.name]
        if labels is not None:
            problems += [
                f"{selector.name} has no label {label}"
                for label in sorted(selector.labels - labels)
            ]
    return problems


def le(bound: float) -> str:
    """A bucket boundary as prometheus_client writes it in the `le` label."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def one_of(values: Iterable[str]) -> str:
    """A regex matching exactly `values` (for `label=~"..."`)."""
    return "|".join(re.escape(v) for v in values)


def _is_not_a_series(ident: str, following: tuple[str, str]) -> bool:
    """Functions and aggregations (`rate(`, `sum by`), operators and keywords."""
    if following == ("op", "(") or ident.lower() in _KEYWORDS:
        return True
    return following[0] == "ident" and following[1] in ("by", "without")


def _label_set(matchers: str) -> frozenset[str]:
    return frozenset(m.group(1) for m in _MATCHER.finditer(matchers))


def _skip_label_list(tokens: list[tuple[str, str]], i: int) -> int:
    if i < len(tokens) and tokens[i] == ("op", "("):
        while i < len(tokens) and tokens[i] != ("op", ")"):
            i += 1
        return i + 1
    return i


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    i = 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
        elif char in "\"'`":
            i = _string_end(expr, i)
        elif char == "{":
            end = _closing(expr, i, "}")
            yield "matchers", _strip_strings(expr[i + 1 : end])
            i = end + 1
        elif char == "[":
            i = _closing(expr, i, "]") + 1
        elif match := _IDENT.match(expr, i):
            yield "ident", match.group()
            i = match.end()
        elif match := _NUMBER.match(expr, i):
            i = match.end()
        else:
            yield "op", char
            i += 1


def _string_end(expr: str, start: int) -> int:
    quote, i = expr[start], start + 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise PromQLSyntaxError(f"unterminated string at {start}: {expr[start : start + 20]!r}")


def _closing(expr: str, start: int, closer: str) -> int:
    i = start + 1
    while i < len(expr):
        if expr[i] in "\"'`":
            i = _string_end(expr, i)
            continue
        if expr[i] == closer:
            return i
        i += 1
    raise PromQLSyntaxError(f"no {closer!r} closes {expr[start]!r} at {start}")


def _strip_strings(matchers: str) -> str:
    """Matcher text with string values blanked, so `,` or `=` inside them cannot confuse."""
    out, i = [], 0
    while i < len(matchers):
        if matchers[i] in "\"'`":
            end = _string_end(matchers, i)
            out.append('""')
            i = end
        else:
            out.append(matchers[i])
            i += 1
    return "".join(out)
