"""The annotation templating subset renders as Prometheus' Go functions do."""

import math

import pytest

from alerts.templating import (
    UnsupportedTemplate,
    check,
    humanize,
    humanize_duration,
    humanize_percentage,
    queries,
    render,
    sprintf,
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


QUERY = (
    'errors {{ with query (printf "x{model_name=%q, model_version=%q} > 0.1" '
    "$labels.model_name $labels.model_version) }}HIGH{{ else }}"
    '{{ with query (printf "x{model_name=%q} >= 0" $labels.model_name) }}ok'
    "{{ else }}unknown{{ end }}{{ end }}."
)
LABELS = {"model_name": "m", "model_version": '3"b'}


@pytest.mark.parametrize(
    ("found", "text"),
    [
        ({'x{model_name="m", model_version="3\\"b"} > 0.1'}, "errors HIGH."),
        ({'x{model_name="m"} >= 0'}, "errors ok."),
        (set(), "errors unknown."),
    ],
)
def test_with_query_blocks_take_the_branch_the_caller_predicts(found, text):
    assert render(QUERY, LABELS, 0.0, found.__contains__) == text


def test_queries_are_listed_and_checked():
    check(QUERY)
    assert queries(QUERY) == [
        "x{model_name=%q, model_version=%q} > 0.1",
        "x{model_name=%q} >= 0",
    ]
    assert render('a{{ with query (printf "y") }} b{{ end }}.', {}, 0) == "a."


@pytest.mark.parametrize(
    "template",
    [
        '{{ with query (printf "x") }}never closed',
        "an {{ end }} without a block",
        '{{ with query (printf "x{a=%q}") }}{{ end }}',  # a verb without its argument
        '{{ with query (printf "x" $labels.a) }}{{ end }}',  # an argument without its verb
        '{{ with query "x" }}{{ end }}',
    ],
)
def test_malformed_blocks_are_refused(template):
    with pytest.raises(UnsupportedTemplate):
        check(template)


def test_urlquery_and_go_quoting():
    template = "{{ $labels.tenant | urlquery }}"
    assert render(template, {"tenant": "*"}, 0) == "%2A"
    assert render(template, {"tenant": "a b/ü~_.-"}, 0) == "a+b%2F%C3%BC~_.-"
    assert sprintf("%q/%s/100%%", ['a"\\b', "c"]) == '"a\\"\\\\b"/c/100%'
