"""Alertmanager configuration: critical pages, warning opens a ticket, info stays on the UI."""

from __future__ import annotations

from typing import Any

from alerts.promql import one_of
from alerts.spec import AlertSpec

PAGER, TICKET, NOWHERE = "pager", "ticket", "blackhole"


def _webhook(url: str) -> dict[str, Any]:
    return {"webhook_configs": [{"url": url, "send_resolved": True}]}


def alertmanager_config(
    spec: AlertSpec, pager_url: str | None = None, ticket_url: str | None = None
) -> dict[str, Any]:
    """The config dict; `pager_url`/`ticket_url` override the spec's placeholders."""
    am = spec.alertmanager
    config: dict[str, Any] = {
        "route": {
            "receiver": NOWHERE,
            "group_by": list(am.group_by),
            "group_wait": am.group_wait,
            "group_interval": am.group_interval,
            "repeat_interval": am.repeat_interval,
            "routes": [
                {"receiver": PAGER, "matchers": ['severity="critical"']},
                {"receiver": TICKET, "matchers": ['severity="warning"']},
            ],
        },
        "receivers": [
            {"name": NOWHERE},
            {"name": PAGER, **_webhook(pager_url or am.pager_url)},
            {"name": TICKET, **_webhook(ticket_url or am.ticket_url)},
        ],
        "inhibit_rules": inhibit_rules(spec),
    }
    return config


def inhibit_rules(spec: AlertSpec) -> list[dict[str, Any]]:
    """A page mutes the ticket of the same SLO and endpoint; an outage mutes drift alerts."""
    rules: list[dict[str, Any]] = [
        {
            "source_matchers": ['severity="critical"', 'slo=~".+"'],
            "target_matchers": ['severity="warning"', 'slo=~".+"'],
            "equal": ["slo", "endpoint"],
        }
    ]
    if spec.alertmanager.mute_drift_while and spec.drift:
        outages = one_of(spec.alertmanager.mute_drift_while)
        drift = one_of(alert.alert for alert in spec.drift)
        rules.append(
            {
                "source_matchers": [f'alertname=~"{outages}"'],
                "target_matchers": [f'alertname=~"{drift}"'],
            }
        )
    return rules
