"""What an expression selects: the guard that keeps rules and dashboards on catalog series."""

import pytest

from alerts.promql import (
    PromQLSyntaxError,
    Selector,
    catalog_labels,
    le,
    one_of,
    selectors,
    series_of,
    unknown_references,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", [Selector("up", frozenset())]),
        ('up{job="a", instance!~"b,c=d"}', [Selector("up", frozenset({"job", "instance"}))]),
        (
            'histogram_quantile(0.99, sum by (le) (rate(x_bucket{a=~"$m"}[$__rate_interval])))',
            [Selector("x_bucket", frozenset({"a"}))],
        ),
        ("sum(rate(x[5m])) by (le) / on (a) group_left (b) y offset 1h", None),
        ("max without (instance) (x) > bool 0 and x unless absent(y)", None),
        ('{__name__="x"}', [Selector(None, frozenset({"__name__"}))]),
        ('label_replace(x, "dst", "$1", "src", "(.*)") or vector(0) + time()', None),
        ("# a comment naming fake_series\nx", [Selector("x", frozenset())]),
        ("rate(x[5m:1m]) * Inf - NaN", [Selector("x", frozenset())]),
    ],
)
def test_selectors(expr, expected):
    found = selectors(expr)
    if expected is None:
        assert {s.name for s in found} <= {"x", "y"}
        assert found
    else:
        assert found == expected


def test_series_of_skips_functions_aggregations_and_keywords():
    expr = "sum by (tenant) (increase(a_total[1h])) / ignoring (x) max(b) or on() vector(1)"
    assert series_of(expr) == {"a_total", "b"}


def test_unknown_series_and_labels_are_reported():
    known = catalog_labels()
    assert unknown_references('servewatch_queue_depth{model_name="x"}', known) == []
    assert unknown_references('servewatch_queue_depth{tenant="x"}', known) == [
        "servewatch_queue_depth has no label tenant"
    ]
    assert unknown_references("rate(servewatch_requests[5m])", known) == [
        "unknown series servewatch_requests"
    ]
    assert unknown_references('{__name__="up"}', known) == ["a selector without a metric name"]


def test_catalog_labels_know_buckets_targets_and_up():
    known = catalog_labels()
    assert "le" in known["servewatch_request_duration_seconds_bucket"]
    assert "le" not in known["servewatch_request_duration_seconds_count"]
    assert {"job", "instance"} <= known["servewatch_requests_total"]
    assert known["up"] == frozenset({"job", "instance"})


def test_unterminated_input_raises():
    with pytest.raises(PromQLSyntaxError):
        selectors('up{job="a}')
    with pytest.raises(PromQLSyntaxError):
        selectors("rate(x[5m)")


def test_le_matches_prometheus_client_and_one_of_escapes():
    assert [le(b) for b in (0.5, 1.0, 10.0, 0.0025)] == ["0.5", "1.0", "10.0", "0.0025"]
    assert one_of(["a.b", "c"]) == r"a\.b|c"
