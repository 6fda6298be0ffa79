"""The runbooks page: every alert's runbook_url fragment lands on its section."""

import re
from pathlib import Path

import yaml

from monitors.runbooks import RUNBOOKS_FILE, anchor, render_runbooks

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "generated" / "servewatch.rules.yaml"


def _alerts() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_generated_alert_has_a_heading_with_its_lowercased_name_as_id():
    page = render_runbooks(RUNBOOKS_FILE.read_text(encoding="utf-8"))
    ids = re.findall(r'<h2 id="([^"]+)">', page)
    alerts = _alerts()
    assert alerts
    assert {name.lower() for name in alerts} <= set(ids)
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>servewatch runbooks</title>" in page


def test_anchors_and_escaping():
    assert anchor("ServewatchTrafficStopped") == "servewatchtrafficstopped"
    assert anchor("  What to do, first!  ") == "what-to-do-first"
    page = render_runbooks(
        "# T\n\n## A <b>x</b>\n\n<script>alert(1)</script>\n\n| a |\n|---|\n| 1 |\n"
    )
    assert '<h2 id="a-b-x-b">A &lt;b&gt;x&lt;/b&gt;</h2>' in page
    assert "<script>" not in page
    assert "<table>" in page
