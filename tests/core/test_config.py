from pathlib import Path

import pytest

from core.config import (
    ConfigError,
    app_config_yaml,
    hash_api_key,
    load_app_config,
    load_settings,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "servewatch.yaml"


def test_defaults_need_no_file(monkeypatch, tmp_path):
    monkeypatch.delenv("SERVEWATCH_DATABASE_URL", raising=False)
    settings = load_settings(home=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.as_posix()}/servewatch.db"
    assert settings.config.monitors.threshold("class_shift", "psi").alert == 0.25
    assert settings.config.batching["classify_ticket"].max_latency_ms < (
        settings.config.batching["classify_tickets"].max_latency_ms
    )


def test_example_config_resolves_tenants_by_key_hash():
    config = load_app_config(EXAMPLE)
    assert config.tenant_for_key("demo-acme-key") == "acme"
    assert config.tenant_for_key("not-a-key") is None
    assert not config.tenants["globex"].allows("predict_risk")
    assert config.pricing.price_for("risk_scorer").per_request == 0.000001


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("SERVEWATCH_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("SERVEWATCH_LOG_BATCH_SIZE", "64")
    settings = load_settings()
    assert settings.resolved_database_url == "postgresql://u@h/db"
    assert settings.log_batch_size == 64


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("SERVEWATCH_LOG_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="SERVEWATCH_LOG_BATCH_SIZE"):
        load_settings()


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("monitors:\n  min_predictions: 0\n", "monitors.min_predictions"),
        ("tenants:\n  a:\n    api_key_sha256: [plaintext-key]\n", "tenants.a.api_key_sha256"),
        ("pricing:\n  default:\n    cpu_per_second: -1\n", "pricing.default.cpu_per_second"),
        ("batching:\n  classify_ticket:\n    max_batch: 3\n", "batching.classify_ticket.max_batch"),
        (
            "monitors:\n  thresholds:\n    class_shift:\n      psi: {warn: 0.3, alert: 0.1}\n",
            "monitors.thresholds.class_shift.psi.alert",
        ),
        (
            "monitors:\n  false_alarm_rate: {warn: 0.01, alert: 0.05}\n",
            "monitors.false_alarm_rate.alert",
        ),
        ("monitors:\n  false_alarm_rate: {warn: 1.5}\n", "monitors.false_alarm_rate.warn"),
        ("monitors:\n  reference: yesterday\n", "monitors.reference"),
        ("replay:\n  gates: {min_agreement: 1.2}\n", "replay.gates.min_agreement"),
        ("replay:\n  gates: {max_class_shift_psi: 0}\n", "replay.gates.max_class_shift_psi"),
        ("replay:\n  gates: {min_agreemnt: 0.9}\n", "replay.gates.min_agreemnt"),
        ("monitors:\n  production_reference_hours: 0\n", "monitors.production_reference_hours"),
        ("retention:\n  predictions_days: 0\n", "retention.predictions_days"),
        ("retention:\n  monitor_results: 30\n", "retention.monitor_results"),
        ("monitors:\n  overrides:\n    - thresholds: {}\n", "monitors.overrides.0"),
        (
            "monitors:\n  overrides:\n    - model: m\n      thresholds:\n"
            "          class_shift: {pis: {warn: 1, alert: 2}}\n",
            "monitors.overrides.0.thresholds",
        ),
    ],
)
def test_bad_file_value_names_the_field_and_the_file(tmp_path, yaml_text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as excinfo:
        load_app_config(path)
    assert field in str(excinfo.value)
    assert str(path) in str(excinfo.value)


def test_unreadable_or_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_app_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_app_config(bad)


def test_hash_api_key_is_sha256_hex():
    assert hash_api_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_partial_threshold_file_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text(
        "monitors:\n  thresholds:\n    confidence_drift:\n      psi: {warn: 0.2, alert: 0.3}\n"
        "batching:\n  classify_ticket: {max_batch_size: 4}\n"
    )
    config = load_app_config(path)
    assert config.monitors.threshold("confidence_drift", "psi").alert == 0.3
    assert config.monitors.threshold("confidence_drift", "js_distance").alert == 0.2
    assert config.monitors.threshold("schema_failures", "failure_rate").alert == 0.01
    assert (
        set(config.batching)
        == set(config.routing)
        == {
            "classify_ticket",
            "classify_tickets",
            "predict_risk",
        }
    )
    assert config.batching["classify_ticket"].max_batch_size == 4


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "monitors:\n  thresholds:\n    confidence_drfit: {}\n",
            "unknown monitor 'confidence_drfit'",
        ),
        (
            "monitors:\n  thresholds:\n    class_shift:\n      pis: {warn: 1, alert: 2}\n",
            "unknown metric 'pis' of class_shift",
        ),
        ("routing:\n  classify:\n    default: {model: x}\n", "unknown endpoint 'classify'"),
        ("monitors:\n  schedules:\n    costs: {every_seconds: 5}\n", "unknown monitor 'costs'"),
    ],
)
def test_unknown_monitor_metric_or_endpoint_names_are_refused(tmp_path, yaml_text, message):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_app_config(path)


def test_alerting_defaults_route_pages_and_tickets_to_the_local_sink():
    alerting = load_app_config(EXAMPLE).alerting
    assert alerting.runbook_base_url == "http://127.0.0.1:9101/runbooks"
    assert alerting.alert_sink_url == "http://127.0.0.1:9102"
    assert {name: r.kind for name, r in alerting.receivers.items()} == {
        "pager": "sink",
        "ticket": "sink",
    }
    assert alerting.routes == {"critical": ["pager"], "warning": ["ticket"], "info": []}


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        ("runbook_base_url: docs.acme.test", "is not an http"),
        ("receivers: {chat: {kind: slack, api_url: 'https://hooks.slack.test/x'}}", "api_url_file"),
        ("receivers: {pd: {kind: pagerduty, routing_key: abc}}", "routing_key_file"),
        (
            "receivers: {m: {kind: email, to: a@b.test, from: c@b.test, smarthost: 'smtp:25', "
            "auth_password: hunter2}}",
            "auth_password_file",
        ),
        ("receivers: {pd: {kind: pagerduty, routing_key_file: key.txt}}", "absolute path"),
        (
            "receivers: {m: {kind: email, to: someone, from: c@b.test, smarthost: 'smtp:25'}}",
            "email.to: String should match",
        ),
        (
            "receivers: {m: {kind: email, to: a@b.test, from: c@b.test, smarthost: smtp}}",
            "email.smarthost: String should match",
        ),
        ("receivers: {x: {kind: carrier_pigeon}}", "tag 'carrier_pigeon'"),
        ("receivers: {Pager: {kind: sink}}", "receiver name"),
        ("receivers: {blackhole: {kind: sink}}", "receiver name"),
        ("routes: {critical: [nobody]}", "unknown receivers"),
        ("routes: {urgent: [pager]}", "routes.urgent"),
    ],
)
def test_bad_alerting_config_is_refused_with_its_field(tmp_path, alerting, message):
    path = tmp_path / "c.yaml"
    path.write_text(f"alerting: {{{alerting}}}\n")
    with pytest.raises(ConfigError, match=message):
        load_app_config(path)


def test_receivers_of_every_kind_with_secrets_in_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "alerting:\n"
        "  receivers:\n"
        "    hook: {kind: webhook, url: 'https://hooks.acme.test/a/', bearer_token_file: /run/t}\n"
        "    mail: {kind: email, to: 'a@acme.test, b@acme.test', from: sw@acme.test,\n"
        "           smarthost: 'smtp.acme.test:587', auth_password_file: /run/p}\n"
        "    chat: {kind: slack, api_url_file: /run/s, channel: '#ml'}\n"
        "    pd: {kind: pagerduty, routing_key_file: /run/k, send_resolved: false}\n"
        "  routes: {critical: [pd, hook], warning: [mail], info: [chat]}\n"
    )
    alerting = load_app_config(path).alerting
    assert alerting.receivers["hook"].url == "https://hooks.acme.test/a"  # type: ignore[union-attr]
    assert alerting.receivers["mail"].sender == "sw@acme.test"  # type: ignore[union-attr]
    assert alerting.receivers["pd"].send_resolved is False
    assert alerting.routes["critical"] == ["pd", "hook"]


def test_overrides_by_model_and_tenant_the_most_specific_first(tmp_path):
    path = tmp_path / "overrides.yaml"
    path.write_text(
        "monitors:\n"
        "  reference: production\n"
        "  overrides:\n"
        "    - tenant: acme\n"
        "      thresholds: {class_shift: {psi: {warn: 0.15, alert: 0.3}}}\n"
        "    - model: risk_scorer\n"
        "      thresholds: {class_shift: {psi: {warn: 0.2, alert: 0.4}}}\n"
        "      false_alarm_rate: {warn: 0.001, alert: 0.0001}\n"
        "    - model: risk_scorer\n"
        "      tenant: acme\n"
        "      thresholds: {class_shift: {psi: {warn: 0.3, alert: 0.6}}}\n"
    )
    monitors = load_app_config(path).monitors
    assert monitors.reference == "production"
    assert monitors.production_reference_hours == 24

    def psi(model, tenant):
        threshold = monitors.threshold("class_shift", "psi", model, tenant)
        return (threshold.warn, threshold.alert)

    assert psi("risk_scorer", "acme") == (0.3, 0.6)
    assert psi("risk_scorer", "globex") == (0.2, 0.4)
    assert psi("ticket_classifier", "acme") == (0.15, 0.3)
    assert psi("ticket_classifier", "globex") == (0.1, 0.25)
    assert psi(None, None) == (0.1, 0.25)
    # Other metrics and the rates fall through to the next match, then the defaults.
    assert monitors.threshold("class_shift", "js_distance", "risk_scorer", "acme").warn == 0.1
    assert monitors.false_alarms("risk_scorer", "acme").warn == 0.001
    assert monitors.false_alarms("ticket_classifier", "acme").warn == 0.01


def test_a_config_written_as_yaml_reads_back_equal(tmp_path):
    config = load_app_config(EXAMPLE)
    path = tmp_path / "written.yaml"
    path.write_text(app_config_yaml(config))
    assert load_app_config(path) == config


def test_replay_gates_are_unset_by_default_and_read_from_the_file(tmp_path):
    assert load_app_config(None).replay.gates.model_dump() == {
        "min_agreement": None,
        "max_schema_failure_rate": None,
        "max_class_shift_psi": None,
        "max_confidence_psi": None,
    }
    path = tmp_path / "gates.yaml"
    path.write_text("replay:\n  gates: {min_agreement: 0.9, max_schema_failure_rate: 0.001}\n")
    gates = load_app_config(path).replay.gates
    assert (gates.min_agreement, gates.max_schema_failure_rate) == (0.9, 0.001)
    assert gates.max_class_shift_psi is None


def test_retention_keeps_everything_by_default_and_reads_days_from_the_file(tmp_path):
    assert load_app_config(None).retention.model_dump() == {
        "predictions_days": None,
        "monitor_results_days": None,
        "rollups_days": None,
    }
    path = tmp_path / "retention.yaml"
    path.write_text("retention: {predictions_days: 30, monitor_results_days: 90}\n")
    retention = load_app_config(path).retention
    assert (retention.predictions_days, retention.monitor_results_days) == (30, 90)
