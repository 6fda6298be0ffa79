"""Drift alerts: links built from labels the way the reports are laid out, and the hold."""

import pytest

from alerts import templating
from alerts.quality import report_link, report_url
from alerts.render import alerts_of


@pytest.mark.parametrize(
    ("version", "tenant", "path"),
    [
        ("3", "acme", "class_shift/ticket_classifier/3/acme/latest.html"),
        ("3", "*", "class_shift/ticket_classifier/3/%2A/latest.html"),
        ("*", "*", "class_shift/ticket_classifier/%2A/%2A/latest.html"),
        ("1.0/../x", "a b", "class_shift/ticket_classifier/1.0%2F..%2Fx/a+b/latest.html"),
    ],
)
def test_the_report_link_template_renders_as_report_url(version, tenant, path):
    labels = {"model_name": "ticket_classifier", "model_version": version, "tenant": tenant}
    base = "https://reports.acme.test/servewatch"
    rendered = templating.render(report_link(base, "class_shift"), labels, 0.0)
    assert rendered == report_url(base, "class_shift", labels) == f"{base}/{path}"


def test_drift_alerts_hold_only_while_firing_and_carry_their_report(spec, groups):
    alerts = {a.name: a for a in alerts_of(groups)}
    for entry in spec.drift:
        alert = alerts[entry.alert]
        assert f'ALERTS{{alertname="{entry.alert}", alertstate="firing"}}' in alert.expr
        assert f'last_over_time(servewatch_monitor_value{{monitor="{entry.monitor}"}}' in (
            alert.expr
        )
        assert f"/{entry.monitor}/" in alert.annotations["report_url"]
        assert "Platform for" in alert.description
    traffic = alerts[spec.traffic.alert]
    assert "report_url" not in traffic.annotations
    assert 'servewatch_monitor_status{monitor="traffic"} >= 2' in traffic.expr
