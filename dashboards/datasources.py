"""The datasources dashboards use, by the fixed uids that provisioning/datasources defines."""

from __future__ import annotations

from typing import Any

PROMETHEUS_UID = "servewatch-prometheus"
PROMETHEUS_TYPE = "prometheus"
POSTGRES_UID = "servewatch-postgres"
POSTGRES_TYPE = "grafana-postgresql-datasource"
# Panels follow the `datasource` variable, whose default is the provisioned Prometheus.
DATASOURCE_VARIABLE = "datasource"


def prometheus() -> dict[str, Any]:
    """The Prometheus the dashboard's datasource variable selects."""
    return {"type": PROMETHEUS_TYPE, "uid": f"${{{DATASOURCE_VARIABLE}}}"}


def postgres() -> dict[str, Any]:
    """The prediction store (SQL panels)."""
    return {"type": POSTGRES_TYPE, "uid": POSTGRES_UID}
