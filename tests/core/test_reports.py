"""Report paths: one relative path for the files and their URLs, safe for every name."""

import subprocess
from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml

from core.contracts import ALL
from core.reports import (
    LATEST,
    UnsafeReportPathError,
    local_path,
    path_part,
    report_path,
    report_url,
    window_file,
)
from tests.alerts.conftest import tool

NAMES = ("acme", "*", "a b", "x/../y", "ümlaut", "50%", "plus+sign", "v1.2_rc-3~")


def test_the_all_tenants_key_and_odd_names_become_single_safe_parts():
    assert report_path("confidence_drift", "ticket_classifier", "v1", ALL) == (
        "confidence_drift/ticket_classifier/v1/%2A"
    )
    for name in NAMES:
        part = path_part(name)
        assert "/" not in part
        assert "*" not in part
        assert part not in (".", "..")
    assert report_path("m", "x/../y", "v1", "t").split("/") == ["m", "x%2F..%2Fy", "v1", "t"]
    for bad in ("", ".", "..", "nul\x00"):
        with pytest.raises(UnsafeReportPathError):
            path_part(bad)


def test_a_url_path_leads_back_to_the_folder_that_report_path_names(tmp_path):
    for name in NAMES:
        folder = report_path("class_shift", "m", "v1", name)
        assert local_path(tmp_path, f"{folder}/{LATEST}") == tmp_path / folder / LATEST
    star = tmp_path / "c" / "m" / "v1" / "%2A" / LATEST
    for spelled in ("*", "%2A", "%2a"):
        assert local_path(tmp_path, f"c/m/v1/{spelled}/{LATEST}") == star
    assert local_path(tmp_path, "c/m/v1/a+b/x.html") == local_path(tmp_path, "c/m/v1/a%20b/x.html")


@pytest.mark.parametrize(
    "below", ["../secret", "c/../../secret", "%2E%2E/secret", "c//x.html", "c/./x.html", ""]
)
def test_no_url_path_climbs_out_or_names_an_empty_part(tmp_path, below):
    assert local_path(tmp_path, below) is None


def test_the_alert_link_and_the_window_file():
    url = report_url("http://monitors:9101/reports/", "confidence_drift", "m", "v1", ALL)
    assert url == "http://monitors:9101/reports/confidence_drift/m/v1/%2A/latest.html"
    end = datetime(2026, 11, 16, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    assert window_file(end) == "20261116T110000Z.html"
    assert window_file(end) < window_file(end + timedelta(seconds=1))  # names sort by time
    assert window_file(datetime(2026, 11, 16, 11, tzinfo=UTC)) == window_file(end)


def test_prometheus_urlquery_makes_parts_the_server_reads_as_report_path_s(tmp_path):
    """An alert annotation builds the link with Go's `urlquery`: the same folder results."""
    names = [n for n in NAMES if n != "x/../y"] + ["x/y"]
    rules = {
        "groups": [
            {
                "name": "links",
                "rules": [
                    {
                        "alert": "Link",
                        "expr": "x == 1",
                        "annotations": {"part": "{{ $labels.tenant | urlquery }}"},
                    }
                ],
            }
        ]
    }
    go = {name: _go_urlquery(name) for name in names}
    expected = [
        {"exp_labels": {"tenant": name}, "exp_annotations": {"part": part}}
        for name, part in go.items()
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'x{{tenant="{name}"}}', "values": "1 1"} for name in names
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "Link", "exp_alerts": expected}
                ],
            }
        ],
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, allow_unicode=True))
    result = subprocess.run(
        [tool("promtool"), "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name, part in go.items():
        assert local_path(tmp_path, f"m/{part}") == tmp_path / "m" / path_part(name)


def _go_urlquery(name: str) -> str:
    """Go's url.QueryEscape: like quote(safe="") but a space is `+`."""
    return path_part(name).replace("%20", "+")
