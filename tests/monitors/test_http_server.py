"""The monitors' HTTP server: /metrics, read-only /reports without path traversal, /runbooks."""

import http.client

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from core.contracts import ALL
from core.reports import LATEST, report_path, report_url
from monitors.http_server import start_server


@pytest.fixture
def served(tmp_path):
    reports = tmp_path / "reports"
    folder = reports / report_path("confidence_drift", "ticket_classifier", "v1", ALL)
    folder.mkdir(parents=True)
    (folder / LATEST).write_text("<p>all tenants</p>")
    (reports / "finops-2026-W46.md").write_text("# week")
    (tmp_path / "secret.txt").write_text("not for you")
    runbooks = tmp_path / "runbooks.md"
    runbooks.write_text("# Runbooks\n\n## ServewatchTrafficStopped\n\nCheck the client.\n")
    registry = CollectorRegistry()
    Gauge("servewatch_test_gauge", "A gauge.", registry=registry).set(3)
    server = start_server("127.0.0.1", 0, registry, reports, runbooks)
    yield f"http://127.0.0.1:{server.server_port}", tmp_path
    server.shutdown()
    server.server_close()


def test_metrics_come_from_the_registry(served):
    base, _ = served
    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200
    assert "servewatch_test_gauge 3.0" in response.text


def test_a_report_is_served_at_the_url_an_alert_links_to(served):
    base, _ = served
    url = report_url(f"{base}/reports", "confidence_drift", "ticket_classifier", "v1", ALL)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == "<p>all tenants</p>"
    # The tenant spelled as itself reaches the same file.
    plain = "/reports/confidence_drift/ticket_classifier/v1/*/latest.html"
    assert _raw_get(base, plain)[0] == 200
    assert httpx.get(f"{base}/reports/finops-2026-W46.md").text == "# week"


@pytest.mark.parametrize(
    "path",
    [
        "/reports/../secret.txt",
        "/reports/%2E%2E/secret.txt",
        "/reports/..%2Fsecret.txt",
        "/reports//secret.txt",
        "/reports/confidence_drift",
        "/reports/",
        "/reports/confidence_drift/ticket_classifier/v1/%2A/other.html",
        "/secret.txt",
        "/",
    ],
)
def test_anything_else_is_not_found(served, path):
    base, _ = served
    status, body = _raw_get(base, path)
    assert status == 404
    assert b"not for you" not in body


def test_the_server_is_read_only(served):
    base, _ = served
    assert httpx.post(f"{base}/reports/x.html", content=b"x").status_code == 501
    assert httpx.delete(f"{base}/metrics").status_code == 501


def test_runbooks_are_rendered_with_an_id_per_alert(served):
    base, _ = served
    response = httpx.get(f"{base}/runbooks")
    assert response.status_code == 200
    assert '<h2 id="servewatchtrafficstopped">' in response.text


def test_runbooks_missing_are_not_found(served):
    base, tmp_path = served
    (tmp_path / "runbooks.md").unlink()
    assert httpx.get(f"{base}/runbooks").status_code == 404


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (httpx would normalise the dots away)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
