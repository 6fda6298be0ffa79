"""A service whose start-up checks fail: /readyz names them, business requests get not_ready."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from storage.migrate import upgrade
from tests.service.conftest import ServiceServer, auth, write_config
from tests.service.test_service_http import assert_envelope


@pytest.fixture(scope="module")
def unready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceServer, str]]:
    """No models in its store, and a database that was never migrated."""
    home = tmp_path_factory.mktemp("unready")
    database_url = f"sqlite:///{home / 'store.db'}"
    (home / "empty-models").mkdir()
    server = ServiceServer(
        home=home,
        config=write_config(home / "servewatch.yaml"),
        models_home=home / "empty-models",
        database_url=database_url,
    )
    server.start(ready=False)
    yield server, database_url
    server.stop()


def test_readyz_names_the_failing_checks_and_details_stay_on_loopback(unready):
    server, _ = unready
    error = assert_envelope(httpx.get(f"{server.url}/readyz"), "not_ready", 503)
    assert error["message"] == "failing checks: models, provider, sample, store"
    details = httpx.get(f"{server.url}/readyz/details")  # the test client is on loopback
    assert details.status_code == 503
    checks = details.json()["checks"]
    assert checks["store"].startswith("store does not answer")
    assert checks["models"] != "ok"
    assert httpx.get(f"{server.url}/livez").status_code == 200


def test_business_requests_get_not_ready_after_authentication(unready):
    server, _ = unready
    with server.client() as client:
        ready = client.post("/classify_ticket", json={"text": "hi"}, headers=auth())
        assert_envelope(ready, "not_ready", 503)
        assert_envelope(client.post("/classify_ticket", json={"text": "hi"}), "unauthorized", 401)
        metrics = client.get("/metrics").text
    assert 'outcome="not_ready"' in metrics


def test_a_check_that_starts_passing_drops_out_of_the_report(unready):
    server, database_url = unready
    upgrade(database_url)
    deadline = time.monotonic() + 10
    message = ""
    while time.monotonic() < deadline:
        message = httpx.get(f"{server.url}/readyz").json()["error"]["message"]
        if "store" not in message:
            break
        time.sleep(0.5)
    assert message == "failing checks: models, provider, sample"
