"""`servewatch alerts build`: committed files equal what the generator renders now (golden)."""

import os
import stat

from typer.testing import CliRunner

from alerts.cli import app
from core.files import differing, strays, write_atomically, write_files
from tests.alerts.conftest import ALERTS_DIR

runner = CliRunner()


def test_committed_files_are_what_the_spec_renders_now(rendered):
    stale = differing(ALERTS_DIR, rendered) + strays(ALERTS_DIR, rendered, "generated", "*.yaml")
    assert stale == [], "run `servewatch alerts build` and commit the result"


def test_build_check_passes_on_the_committed_tree():
    result = runner.invoke(app, ["build", "--check"])
    assert result.exit_code == 0, result.output


def test_build_writes_everything_then_check_spots_a_hand_edit(tmp_path, rendered):
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for relative, text in rendered.items():
        assert (tmp_path / relative).read_text() == text
    rules = tmp_path / "generated" / "servewatch.rules.yaml"
    rules.write_text(rules.read_text().replace("> 0.01", "> 0.5"))
    (tmp_path / "generated" / "old.rules.yaml").write_text("groups: []\n")
    result = runner.invoke(app, ["build", "--check", "--out-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "servewatch.rules.yaml" in result.output
    assert "old.rules.yaml" in result.output
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert differing(tmp_path, rendered) == []
    assert not (tmp_path / "generated" / "old.rules.yaml").exists()


def test_build_takes_links_and_receivers_from_the_config_and_reports_a_bad_spec(tmp_path):
    config = tmp_path / "servewatch.yaml"
    config.write_text(
        "alerting:\n"
        "  runbook_base_url: https://docs.acme.test/runbooks\n"
        "  receivers: {page: {kind: webhook, url: 'http://127.0.0.1:7/page'}}\n"
        "  routes: {critical: [page]}\n"
    )
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:7/page" in (tmp_path / "alertmanager.yml").read_text()
    rules = (tmp_path / "generated" / "servewatch.rules.yaml").read_text()
    assert "https://docs.acme.test/runbooks#servewatchtrafficstopped" in rules
    config.write_text("alerting: {routes: {critical: [nobody]}}\n")
    result = runner.invoke(app, ["build", "--out-dir", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown receivers ['nobody']" in result.output
    bad = tmp_path / "spec.yaml"
    bad.write_text("runbook_url: x\n")
    result = runner.invoke(app, ["build", "--spec", str(bad), "--out-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "slo" in result.output


def test_atomic_write_leaves_no_temp_file_and_a_readable_file(tmp_path):
    target = tmp_path / "deep" / "file.yaml"
    write_atomically(target, "a: 1\n")
    write_atomically(target, "a: 2\n")
    assert target.read_text() == "a: 2\n"
    assert os.listdir(target.parent) == ["file.yaml"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_files_only_touches_what_changed(tmp_path):
    files = {"generated/a.yaml": "a\n", "b.yml": "b\n"}
    assert write_files(tmp_path, files) == ["b.yml", "generated/a.yaml"]
    before = (tmp_path / "b.yml").stat().st_mtime_ns
    assert write_files(tmp_path, {**files, "b.yml": "b\n"}) == []
    assert (tmp_path / "b.yml").stat().st_mtime_ns == before
