import re
import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from core.catalog import CATALOG, MONITOR_METRICS, SERVICE_METRICS, series_names
from core.metrics import create_metrics
from tests.conftest import require


def test_names_are_unique_prefixed_and_conventional():
    names = [entry.name for entry in CATALOG]
    assert len(names) == len(set(names))
    for entry in CATALOG:
        assert re.fullmatch(r"servewatch_[a-z0-9_]+", entry.name), entry.name
        assert entry.help.endswith("."), entry.name
        assert entry.name.endswith("_total") == (entry.kind == "counter"), entry.name
        assert (entry.buckets is not None) == (entry.kind == "histogram"), entry.name


def test_histogram_series_include_bucket_sum_count():
    assert {
        "servewatch_request_duration_seconds_bucket",
        "servewatch_request_duration_seconds_count",
        "servewatch_requests_total",
    } <= series_names()


def test_catalog_imports_without_bentoml():
    code = "import sys, core.catalog; assert 'bentoml' not in sys.modules"
    subprocess.run([__import__("sys").executable, "-c", code], check=True)


def _exposition() -> bytes:
    registry = CollectorRegistry()
    metrics = create_metrics(CATALOG, registry)
    for entry in CATALOG:
        metric = metrics[entry.name]
        child = metric.labels(*("x" for _ in entry.labels)) if entry.labels else metric
        if entry.kind == "counter":
            child.inc()
        elif entry.kind == "gauge":
            child.set(1)
        else:
            child.observe(0.5)
    return generate_latest(registry)


def test_every_catalog_series_is_exposed():
    text = _exposition().decode()
    for name in series_names(SERVICE_METRICS + MONITOR_METRICS):
        assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), name


def test_promtool_check_metrics_reports_nothing():
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=_exposition(), capture_output=True, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert not report.strip(), report
