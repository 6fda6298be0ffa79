"""OpenAPI contract: schemathesis fuzzes the live service from its own /docs.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.service.conftest import KEYS, ServiceServer

# A body over the size limit is rejected with 413 before it is parsed: a rejection too.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "413", "422"]
"""


# Both topologies: the split one's own failures (a model service gone, slow or refusing) are
# tests/service/test_model_services.py's.
def test_generated_requests_get_documented_answers_and_never_a_5xx(
    service_server: ServiceServer, tmp_path: Path
):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file", str(config), "--no-color",
        "run", f"{service_server.url}/docs.json", "--url", service_server.url,
        "--header", f"Authorization: Bearer {KEYS['acme']}",
        "--checks", "all", "--max-examples", "25", "--seed", "20261124", "--workers", "1",
        "--request-timeout", "10",
    ]  # fmt: skip
    # Its caches (.hypothesis, .schemathesis) go to the temporary folder, not the checkout.
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
