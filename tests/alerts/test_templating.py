"""The annotation templating subset renders as Prometheus' Go functions do."""

import math

import pytest

from alerts.templating import (
    UnsupportedTemplate,
    check,
    humanize,
    humanize_duration,
    humanize_percentage,
    render,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (12, "12"),
        (1234, "1.234k"),
        (1_500_000, "1.5M"),
        (0.3, "300m"),
        (0.0012, "1.2m"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_humanize(value, text):
    assert humanize(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.036000000000000004, "3.6%"), (1.05, "105%"), (0.123456, "12.35%"), (0, "0%")],
)
def test_humanize_percentage(value, text):
    assert humanize_percentage(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1500, "25m 0s"),
        (90061, "1d 1h 1m 1s"),
        (3600, "1h 0m 0s"),
        (42.5, "42.5s"),
        (0.25, "250ms"),
        (0, "0s"),
    ],
)
def test_humanize_duration(value, text):
    assert humanize_duration(value) == text


def test_render_labels_values_and_printf():
    text = render(
        '{{ $labels.tenant }} at {{ printf "%.3f" $value }} ({{ $labels.missing }})',
        {"tenant": "acme"},
        0.3,
    )
    assert text == "acme at 0.300 (<no value>)"


def test_unsupported_actions_are_refused():
    with pytest.raises(UnsupportedTemplate):
        check("{{ $value }}")
    with pytest.raises(UnsupportedTemplate):
        render("{{ if gt $value 1.0 }}big{{ end }}", {}, 2.0)
