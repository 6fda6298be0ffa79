"""The generated rules against the real validator and evaluator: promtool check/test rules."""

import subprocess
from collections import defaultdict

import pytest
import yaml

from alerts.render import RULES_FILE, TESTS_FILE, render_rules, rule_groups
from alerts.spec import parse_spec
from tests.alerts.conftest import tool


@pytest.fixture
def generated_dir(tmp_path, rendered):
    for relative, text in rendered.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "generated"


def _promtool(*args, cwd):
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_promtool_check_rules_accepts_the_rules(generated_dir):
    result = _promtool("check", "rules", RULES_FILE.split("/")[-1], cwd=generated_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 47 rules found" in result.stdout


def test_promtool_unit_tests_pass(generated_dir):
    result = _promtool("test", "rules", TESTS_FILE.split("/")[-1], cwd=generated_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case(rendered):
    rules = yaml.safe_load(rendered[RULES_FILE])
    tests = yaml.safe_load(rendered[TESTS_FILE])
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    outcomes = defaultdict(set)
    for test in tests["tests"]:
        for check in test["alert_rule_test"]:
            outcomes[check["alertname"]].add(bool(check["exp_alerts"]))
    for alert in alerts:
        assert outcomes[alert] == {True, False}, alert
    assert set(outcomes) == alerts


@pytest.mark.parametrize(
    ("path", "value", "failing"),
    [
        (
            ("output_schema", "ratio"),
            0.05,
            "ServewatchOutputSchemaFailures fires above the ratio, and when every output broke",
        ),
        (
            ("slo", "burn_alerts", 0, "windows", 1, "factor"),
            8,
            "ServewatchAvailabilityFastBurn fires at 1.2x its lowest burn factor",
        ),
        (("budget", 1, "share"), 1.2, "each budget level fires for the tenant in its band only"),
        (
            ("triage", "shed_ratio"),
            0.1,
            "ServewatchClassShift fires for each key judged at alert level and says whether the "
            "platform was healthy",
        ),
        (
            ("drift", 0, "hold_insufficient"),
            "2m",
            "ServewatchConfidenceDrift holds through insufficient data once firing, not while "
            "pending, and a judged window clears it",
        ),
        (
            ("results_staleness", "missed_runs"),
            5,
            "ServewatchMonitorResultsStale fires for results older than 3 of the monitor's "
            "exported intervals, not for older ones within theirs",
        ),
        (
            ("canary", "errors", "factor"),
            5,
            "ServewatchCanaryErrorsWorse fires for a canary in force above 2x its baseline's "
            "error ratio, not for one within it",
        ),
        (
            ("canary", "latency", "floor_seconds"),
            0.05,
            "ServewatchCanaryLatencyWorse fires for a canary slower than 1.5x its baseline and "
            "0.1s, not for one under 0.1s",
        ),
        (
            ("canary", "min_requests"),
            1000,
            "ServewatchCanaryDrift fires for a canary whose mean confidence is more than 0.05 "
            "below its baseline's, not for one within it",
        ),
        (
            ("model_services", "errors", "ratio"),
            0.05,
            "ServewatchModelServiceErrors fires for a model service failing more than 1% of its "
            "calls, whatever the reasons, not for one within it",
        ),
        (
            ("model_services", "down", "reasons"),
            ["unavailable"],
            "ServewatchModelServiceDown fires for a model service at least 50% of whose calls "
            "failed as unavailable or timeout, not for one failing otherwise",
        ),
        (
            ("model_services", "slow", "threshold_seconds"),
            1.0,
            "ServewatchModelServiceSlow fires for a model service slower than 0.25s at the "
            "quantile, not for one under it",
        ),
        (
            ("canary", "min_requests"),
            10,
            "ServewatchCanaryErrorsWorse stays quiet for a promoted canary, an ended rollout and "
            "a canary with fewer than 100 requests over 10m",
        ),
    ],
)
def test_the_unit_tests_catch_a_changed_threshold(
    generated_dir, spec, app_config, path, value, failing
):
    raw = yaml.safe_load(spec.model_dump_json(by_alias=True))
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    mutated = render_rules(rule_groups(parse_spec(raw), app_config))
    (generated_dir / RULES_FILE.split("/")[-1]).write_text(mutated)
    # Only the case that must catch it: the full suite takes seconds per run.
    tests = yaml.safe_load((generated_dir / TESTS_FILE.split("/")[-1]).read_text())
    tests["tests"] = [t for t in tests["tests"] if t["name"] == failing]
    assert tests["tests"], failing
    (generated_dir / "one.tests.yaml").write_text(yaml.safe_dump(tests))
    result = _promtool("test", "rules", "one.tests.yaml", cwd=generated_dir)
    assert result.returncode != 0
    assert failing in result.stdout + result.stderr
