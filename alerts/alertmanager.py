"""Alertmanager configuration: receivers and routing by severity from the app config, grouping
and inhibition from the spec."""

from __future__ import annotations

from typing import Any

from alerts.promql import one_of
from alerts.spec import AlertSpec
from core.config import (
    ALERT_SEVERITIES,
    NO_RECEIVER,
    AlertingConfig,
    EmailReceiver,
    PagerDutyReceiver,
    Receiver,
    SinkReceiver,
    SlackReceiver,
    WebhookReceiver,
)

# Slack shows the alerts' summaries with their runbook links (Alertmanager's default shows none).
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}* <{{ .Annotations.runbook_url }}|runbook>\n"
    "{{ end }}"
)


def receiver_config(name: str, receiver: Receiver, alerting: AlertingConfig) -> dict[str, Any]:
    """One Alertmanager receiver; secrets stay in the files the config names."""
    body: dict[str, Any] = {"send_resolved": receiver.send_resolved}
    if isinstance(receiver, SinkReceiver):
        return {
            "name": name,
            "webhook_configs": [{"url": f"{alerting.alert_sink_url}/{name}", **body}],
        }
    if isinstance(receiver, WebhookReceiver):
        body = {"url": receiver.url, **body}
        if receiver.bearer_token_file is not None:
            credentials = {"type": "Bearer", "credentials_file": str(receiver.bearer_token_file)}
            body["http_config"] = {"authorization": credentials}
        return {"name": name, "webhook_configs": [body]}
    if isinstance(receiver, EmailReceiver):
        return {"name": name, "email_configs": [{**body, **_email(receiver)}]}
    if isinstance(receiver, SlackReceiver):
        body["api_url_file"] = str(receiver.api_url_file)
        if receiver.channel is not None:
            body["channel"] = receiver.channel
        return {"name": name, "slack_configs": [{**body, "text": SLACK_TEXT}]}
    assert isinstance(receiver, PagerDutyReceiver)
    body["routing_key_file"] = str(receiver.routing_key_file)
    return {"name": name, "pagerduty_configs": [body]}


def _email(receiver: EmailReceiver) -> dict[str, Any]:
    email: dict[str, Any] = {
        "to": receiver.to,
        "from": receiver.sender,
        "smarthost": receiver.smarthost,
        "require_tls": receiver.require_tls,
    }
    if receiver.auth_username is not None:
        email["auth_username"] = receiver.auth_username
    if receiver.auth_password_file is not None:
        email["auth_password_file"] = str(receiver.auth_password_file)
    return email


def severity_routes(alerting: AlertingConfig) -> list[dict[str, Any]]:
    """A route per severity and receiver; every receiver of a severity is notified."""
    routes = []
    for severity in ALERT_SEVERITIES:
        names = alerting.routes.get(severity, [])
        for index, name in enumerate(names):
            route: dict[str, Any] = {"receiver": name, "matchers": [f'severity="{severity}"']}
            if index < len(names) - 1:
                route["continue"] = True
            routes.append(route)
    return routes


def alertmanager_config(spec: AlertSpec, alerting: AlertingConfig) -> dict[str, Any]:
    """The config dict: alerts no route takes end at a receiver that notifies nobody."""
    am = spec.alertmanager
    return {
        "route": {
            "receiver": NO_RECEIVER,
            "group_by": list(am.group_by),
            "group_wait": am.group_wait,
            "group_interval": am.group_interval,
            "repeat_interval": am.repeat_interval,
            "routes": severity_routes(alerting),
        },
        "receivers": [
            {"name": NO_RECEIVER},
            *(receiver_config(n, r, alerting) for n, r in alerting.receivers.items()),
        ],
        "inhibit_rules": inhibit_rules(spec),
    }


def inhibit_rules(spec: AlertSpec) -> list[dict[str, Any]]:
    """A page mutes the ticket of the same SLO and endpoint; an outage mutes the drift and
    traffic alerts; failing runs of a monitor mute the staleness of its results; a model service
    the gateway cannot reach mutes its call errors and latency."""
    hop = spec.model_services
    rules: list[dict[str, Any]] = [
        {
            "source_matchers": ['severity="critical"', 'slo=~".+"'],
            "target_matchers": ['severity="warning"', 'slo=~".+"'],
            "equal": ["slo", "endpoint"],
        },
        {
            "source_matchers": [f'alertname="{spec.monitor_staleness.alert}"'],
            "target_matchers": [f'alertname="{spec.results_staleness.alert}"'],
            "equal": ["monitor"],
        },
        {
            "source_matchers": [f'alertname="{hop.down.alert}"'],
            "target_matchers": [f'alertname=~"{one_of([hop.errors.alert, hop.slow.alert])}"'],
            "equal": ["service"],
        },
    ]
    if spec.alertmanager.mute_drift_while:
        outages = one_of(spec.alertmanager.mute_drift_while)
        muted = one_of([*(alert.alert for alert in spec.drift), spec.traffic.alert])
        rules.append(
            {
                "source_matchers": [f'alertname=~"{outages}"'],
                "target_matchers": [f'alertname=~"{muted}"'],
            }
        )
    return rules
