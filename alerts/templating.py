"""The subset of Prometheus' alert templating the rules use, to predict annotations in tests.

Supported actions: `{{ $labels.NAME }}`, `{{ $value | humanize }}`,
`{{ $value | humanizePercentage }}`, `{{ $value | humanizeDuration }}` and
`{{ printf "%.Nf" $value }}`; anything else is an error, so a rule cannot use a construct whose
rendering the promtool tests would predict wrongly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_ACTION = re.compile(r"\{\{(.*?)\}\}")
_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
_PRINTF = re.compile(r'printf "%\.(\d+)f" \$value')


class UnsupportedTemplate(ValueError):
    """A template action outside the supported subset."""


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    """`template` expanded as Prometheus would for an alert with `labels` and `value`."""
    return _ACTION.sub(lambda m: _action(m.group(1).strip(), labels, value), template)


def check(template: str) -> None:
    """Raise UnsupportedTemplate when `template` uses something `render` cannot predict."""
    for match in _ACTION.finditer(template):
        _action(match.group(1).strip(), {}, 1.0)


def _action(action: str, labels: Mapping[str, str], value: float) -> str:
    if label := _LABEL.fullmatch(action):
        return labels.get(label.group(1), "<no value>")
    if printf := _PRINTF.fullmatch(action):
        return f"{value:.{printf.group(1)}f}"
    functions = {
        "$value | humanize": humanize,
        "$value | humanizePercentage": humanize_percentage,
        "$value | humanizeDuration": humanize_duration,
    }
    if action in functions:
        return functions[action](value)
    raise UnsupportedTemplate(f"template action {{{{ {action} }}}} is not supported")


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
