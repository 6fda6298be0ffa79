"""The subset of Prometheus' alert templating the rules use, to predict annotations in tests.

Supported actions: `{{ $labels.NAME }}`, `{{ $value | humanize }}`,
`{{ $value | humanizePercentage }}`, `{{ $value | humanizeDuration }}`,
`{{ printf "%.Nf" $value }}`, `{{ $labels.NAME | urlquery }}` and blocks
`{{ with query (printf "PROMQL" $labels.A ...) }}...{{ else }}...{{ end }}`, whose PromQL may
fill label values in with `%q`. Anything else is an error, so a rule cannot use a construct whose
rendering the promtool tests would predict wrongly. What a query returns is not computed here:
the caller says which queries find something (promtool then checks that prediction).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
_PRINTF = re.compile(r'printf "%\.(\d+)f" \$value')
_URLQUERY = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*) \| urlquery")
_WITH_QUERY = re.compile(r'with query \(printf "([^"\\]*)"((?: \$labels\.[A-Za-z_]\w*)*)\)')
_VERB = re.compile(r"%(.)")

Found = Callable[[str], bool]


class UnsupportedTemplate(ValueError):
    """A template action outside the supported subset."""


@dataclass(frozen=True)
class Query:
    """A `with query` block: its PromQL format, the labels filling it, and both branches."""

    fmt: str
    labels: tuple[str, ...]
    found: tuple[Node, ...]
    otherwise: tuple[Node, ...]

    def promql(self, labels: Mapping[str, str]) -> str:
        """The query Prometheus runs for an alert with `labels`."""
        return sprintf(self.fmt, [labels.get(name, "<no value>") for name in self.labels])


@dataclass(frozen=True)
class Action:
    """A single action, by its source between the braces."""

    source: str


Node = str | Action | Query  # literal text, an action or a query block


def render(
    template: str, labels: Mapping[str, str], value: float, found: Found | None = None
) -> str:
    """`template` expanded as Prometheus would; `found(promql)` says whether a query finds data."""
    return _render(parse(template), labels, value, found or _nothing_found)


def check(template: str) -> None:
    """Raise UnsupportedTemplate when `template` uses something `render` cannot predict."""
    _render(parse(template), {}, 1.0, _nothing_found, every_branch=True)


def queries(template: str) -> list[str]:
    """The PromQL format strings of the template's queries (each `%q` stands for a label)."""
    return [query.fmt for query in _queries(parse(template))]


def parse(template: str) -> tuple[Node, ...]:
    """Text, actions and `with query` blocks, nested as the template nests them."""
    tokens = list(_tokens(template))
    nodes, rest = _parse(tokens, 0, None)
    if rest != len(tokens):
        raise UnsupportedTemplate(f"{{{{ {tokens[rest][1]} }}}} without its {{{{ with }}}}")
    return nodes


def sprintf(fmt: str, values: Sequence[str]) -> str:
    """Go's `printf` for the verbs `%q` (a Go string literal) and `%s`."""
    remaining = list(values)

    def verb(match: re.Match[str]) -> str:
        if match.group(1) == "%":
            return "%"
        if match.group(1) not in "qs" or not remaining:
            raise UnsupportedTemplate(f"printf verb %{match.group(1)} in {fmt!r}")
        text = remaining.pop(0)
        return go_quote(text) if match.group(1) == "q" else text

    result = _VERB.sub(verb, fmt)
    if remaining:
        raise UnsupportedTemplate(f"printf {fmt!r} has more arguments than verbs")
    return result


def go_quote(text: str) -> str:
    """Go's `%q` of a printable string: double quotes, with backslash and quote escaped."""
    if not text.isprintable():
        raise UnsupportedTemplate(f"%q of a non-printable string {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tokens(template: str) -> Iterator[tuple[str, str]]:
    position = 0
    for match in _ACTION.finditer(template):
        if match.start() > position:
            yield "text", template[position : match.start()]
        yield "action", match.group(1).strip()
        position = match.end()
    if position < len(template):
        yield "text", template[position:]


def _parse(
    tokens: list[tuple[str, str]], i: int, closing: tuple[str, ...] | None
) -> tuple[tuple[Node, ...], int]:
    """Nodes from token `i` up to one of `closing` (None: the end); returns where it stopped."""
    nodes: list[Node] = []
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "action" and closing is not None and text in closing:
            return tuple(nodes), i
        if kind == "action" and (query := _WITH_QUERY.fullmatch(text)):
            block, i = _parse_with(tokens, i + 1, query)
            nodes.append(block)
            continue
        if kind == "action" and text in ("else", "end"):
            return tuple(nodes), i
        nodes.append(text if kind == "text" else Action(text))
        i += 1
    if closing is not None:
        raise UnsupportedTemplate("a {{ with }} block has no {{ end }}")
    return tuple(nodes), i


def _parse_with(tokens: list[tuple[str, str]], i: int, query: re.Match[str]) -> tuple[Query, int]:
    found, i = _parse(tokens, i, ("else", "end"))
    otherwise: tuple[Node, ...] = ()
    if tokens[i][1] == "else":
        otherwise, i = _parse(tokens, i + 1, ("end",))
    labels = tuple(_LABEL.fullmatch(arg).group(1) for arg in query.group(2).split())  # type: ignore[union-attr]
    return Query(query.group(1), labels, found, otherwise), i + 1


def _render(
    nodes: Sequence[Node],
    labels: Mapping[str, str],
    value: float,
    found: Found,
    every_branch: bool = False,
) -> str:
    parts = []
    for node in nodes:
        if isinstance(node, Query):
            sprintf(node.fmt, ["x"] * len(node.labels))  # the verbs match the arguments
            branches = (node.found, node.otherwise)
            if every_branch:
                parts += [_render(b, labels, value, found, every_branch) for b in branches]
            else:
                branch = branches[0] if found(node.promql(labels)) else branches[1]
                parts.append(_render(branch, labels, value, found))
        elif isinstance(node, Action):
            parts.append(_action(node.source, labels, value))
        else:
            parts.append(node)
    return "".join(parts)


def _queries(nodes: Sequence[Node]) -> Iterator[Query]:
    for node in nodes:
        if isinstance(node, Query):
            yield node
            yield from _queries(node.found)
            yield from _queries(node.otherwise)


def _nothing_found(_promql: str) -> bool:
    return False


def _action(action: str, labels: Mapping[str, str], value: float) -> str:
    if label := _LABEL.fullmatch(action):
        return labels.get(label.group(1), "<no value>")
    if printf := _PRINTF.fullmatch(action):
        return f"{value:.{printf.group(1)}f}"
    if query := _URLQUERY.fullmatch(action):
        return urlquery(labels.get(query.group(1), "<no value>"))
    functions = {
        "$value | humanize": humanize,
        "$value | humanizePercentage": humanize_percentage,
        "$value | humanizeDuration": humanize_duration,
    }
    if action in functions:
        return functions[action](value)
    raise UnsupportedTemplate(f"template action {{{{ {action} }}}} is not supported")


def urlquery(text: str) -> str:
    """Go's `urlquery` (url.QueryEscape): all but letters, digits and `-_.~` escaped, ` ` → `+`."""
    return quote_plus(text, safe="")


def humanize(value: float) -> str:
    """Go's `humanize`: 4 significant digits with an SI prefix."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _g(value)
    prefix = ""
    if abs(value) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
        return f"{_g(value)}{prefix}"
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{_g(value)}{prefix}"


def humanize_percentage(value: float) -> str:
    return f"{_g(value * 100)}%"


def humanize_duration(value: float) -> str:
    """Go's `humanizeDuration`: days to seconds, or an SI-prefixed fraction of a second."""
    if math.isnan(value) or math.isinf(value):
        return _g(value)
    if abs(value) < 1:
        return f"{humanize(value)}s"
    sign = "-" if value < 0 else ""
    total = int(abs(value))
    days, hours = total // 86400, total // 3600 % 24
    minutes, seconds = total // 60 % 60, total % 60
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{_g(abs(value))}s"


def _g(value: float) -> str:
    """Go's `%.4g`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"
