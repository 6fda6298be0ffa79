"""`servewatch dashboards build`: committed JSON equals what the definitions render now."""

import json

from typer.testing import CliRunner

from core.files import differing, strays
from dashboards.cli import app
from tests.dashboards.conftest import DASHBOARDS_DIR

runner = CliRunner()


def test_committed_dashboards_are_what_the_definitions_render_now(rendered):
    stale = differing(DASHBOARDS_DIR, rendered) + strays(
        DASHBOARDS_DIR, rendered, "generated", "*.json"
    )
    assert stale == [], "run `servewatch dashboards build` and commit the result"


def test_build_check_passes_on_the_committed_tree():
    result = runner.invoke(app, ["build", "--check"])
    assert result.exit_code == 0, result.output


def test_build_writes_json_then_check_spots_a_hand_edit(tmp_path, rendered):
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "generated").iterdir()) == [
        "servewatch-finops.json",
        "servewatch-model-quality.json",
        "servewatch-serving.json",
        "servewatch-triage.json",
    ]
    path = tmp_path / "generated" / "servewatch-finops.json"
    model = json.loads(path.read_text())
    model["title"] = "edited by hand"
    path.write_text(json.dumps(model))
    result = runner.invoke(app, ["build", "--check", "--out-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "servewatch-finops.json" in result.output
    assert runner.invoke(app, ["build", "--out-dir", str(tmp_path)]).exit_code == 0
    assert differing(tmp_path, rendered) == []


def test_thresholds_follow_the_app_config_given(tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text(
        "monitors:\n  thresholds:\n    confidence_drift:\n      psi: {warn: 0.05, alert: 0.5}\n"
    )
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "generated" / "servewatch-model-quality.json").read_text())
    titles = [p["title"] for p in model["panels"]]
    # A partial file keeps the other defaults (class_shift) and overrides what it names.
    assert "confidence_drift: psi" in titles
    assert "class_shift: psi" in titles
    psi = next(p for p in model["panels"] if p["title"] == "confidence_drift: psi")
    steps = psi["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.05, 0.5]


def test_runbook_links_follow_the_app_config_given(tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text("alerting:\n  runbook_base_url: https://docs.example.org/runbooks\n")
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "generated" / "servewatch-triage.json").read_text())
    urls = [link["url"] for p in model["panels"] for link in p.get("links", [])]
    assert urls
    assert all(u.startswith("https://docs.example.org/runbooks#servewatch") for u in urls)
