"""The alerting spec: the committed one loads, and bad values are refused with their field."""

import copy

import pytest
import yaml

from alerts.spec import SPEC_FILE, SpecError, burn_alert_name, duration_seconds, parse_spec


@pytest.fixture
def raw():
    return yaml.safe_load(SPEC_FILE.read_text())


def test_committed_spec_has_the_burn_windows_of_the_issue(spec):
    windows = {
        (burn.severity, w.factor, w.long, w.short)
        for burn in spec.slo.burn_alerts
        for w in burn.windows
    }
    assert windows == {
        ("critical", 14.4, "1h", "5m"),
        ("critical", 6, "6h", "30m"),
        ("warning", 3, "1d", "2h"),
        ("warning", 1, "3d", "6h"),
    }


def test_availability_counts_only_server_side_errors(spec):
    availability = next(o for o in spec.slo.objectives if o.kind == "availability")
    assert set(availability.bad_outcomes) == {"model_error", "timeout", "overloaded", "not_ready"}
    assert "validation_error" not in availability.good_outcomes + availability.bad_outcomes


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("1h", 3600), ("1d", 86400), ("1d12h", 129600), ("0m", 0)]
)
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1w", "m5", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        duration_seconds(text)


def _mutated(raw, path, value):
    changed = copy.deepcopy(raw)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("slo", "objectives", 1, "threshold_seconds"), 0.3, "bucket boundary"),
        (("slo", "objectives", 0, "bad_outcomes"), ["model_error", "teapot"], "unknown outcomes"),
        (("slo", "objectives", 0, "good_outcomes"), ["ok", "timeout"], "both good and bad"),
        (("slo", "objectives", 0, "objective"), 1.5, "objective"),
        (("slo", "burn_alerts", 0, "windows", 0, "short"), "2h", "shorter than 1h"),
        (("drift", 0, "alert"), "confidence_drift_alert", "CamelCase"),
        (("drift", 0, "severity"), "page", "severity"),
        (("drift", 0, "monitor"), "vibes", "unknown monitor"),
        (("targets", 1, "alert"), "ServewatchServiceDown", "unique"),
        (("alertmanager", "mute_drift_while"), ["ServewatchNope"], "unknown alerts"),
        (("output_schema", "for"), "ten minutes", "duration"),
        (("canary", "errors", "alert"), "ServewatchClassShift", "unique"),
        (("canary", "latency", "factor"), 1, "greater than 1"),
        (("canary", "latency", "quantile"), 1.2, "less than 1"),
        (("canary", "drift", "confidence_drop"), 0, "greater than 0"),
        (("canary", "min_requests"), 0, "greater than or equal to 1"),
        (("model_services", "down", "reasons"), ["unavailable", "gone"], "unknown reasons"),
        (("model_services", "slow", "quantile"), 1, "less than 1"),
        (("model_services", "errors", "alert"), "ServewatchServiceDown", "unique"),
    ],
)
def test_invalid_specs_name_the_problem(raw, path, value, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(_mutated(raw, path, value))


def test_unknown_keys_are_refused(raw):
    raw["drift"][0]["treshold"] = 0.3
    with pytest.raises(SpecError, match="treshold"):
        parse_spec(raw)


def test_burn_alert_names_join_prefix_slo_and_suffix(spec):
    names = [
        burn_alert_name(spec.slo, o, b) for o in spec.slo.objectives for b in spec.slo.burn_alerts
    ]
    assert names == [
        "ServewatchAvailabilityFastBurn",
        "ServewatchAvailabilitySlowBurn",
        "ServewatchLatencyFastBurn",
        "ServewatchLatencySlowBurn",
    ]
