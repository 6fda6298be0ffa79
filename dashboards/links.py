"""Panel links to the runbook section of the alerts that watch what a panel shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.spec import AlertSpec, burn_alert_name

Link = dict[str, Any]


@dataclass(frozen=True)
class Runbooks:
    """Runbook links from `AppConfig.alerting.runbook_base_url`, anchored like the alerts' own
    runbook_url (`#<alert name in lower case>`), and the spec's alerts by what they watch."""

    base_url: str
    spec: AlertSpec

    def links(self, *alerts: str) -> list[Link]:
        """One panel link per alert, in the shape Grafana's dashboard schema gives panel links."""
        return [
            {
                "title": f"Runbook: {alert}",
                "type": "link",
                "url": f"{self.base_url}#{alert.lower()}",
                "icon": "doc",
                "tooltip": f"What to do when {alert} fires",
                "tags": [],
                "asDropdown": False,
                "targetBlank": True,
                "includeVars": False,
                "keepTime": False,
            }
            for alert in alerts
        ]

    def slo(self, name: str) -> list[Link]:
        """The burn-rate alerts of the SLO called `name` (none when the spec has no such SLO)."""
        slo = self.spec.slo
        return self.links(
            *(
                burn_alert_name(slo, objective, burn)
                for objective in slo.objectives
                if objective.name == name
                for burn in slo.burn_alerts
            )
        )

    def drift(self, *monitors: str) -> list[Link]:
        """The status alerts of the given monitors."""
        return self.links(*(a.alert for a in self.spec.drift if a.monitor in monitors))
