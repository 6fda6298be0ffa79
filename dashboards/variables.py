"""Template variables: the Prometheus to read, and the models, versions and tenants to show."""

from __future__ import annotations

from grafanalib import core

from dashboards.datasources import DATASOURCE_VARIABLE, PROMETHEUS_TYPE, PROMETHEUS_UID, prometheus

REFRESH_ON_TIME_RANGE_CHANGE = 2
# What every label-value variable's "All" stands for in `label=~"$var"` matchers.
ALL = ".*"
# The model-version variable: the Triage dashboard repeats its row over it.
VERSION = "version"


def datasource() -> core.Template:
    return core.Template(
        name=DATASOURCE_VARIABLE,
        label="Data source",
        type="datasource",
        query=PROMETHEUS_TYPE,
        default=PROMETHEUS_UID,
    )


def label_values(name: str, label: str, selector: str, title: str) -> core.Template:
    """A multi-value variable over `label`'s values in `selector`, "All" by default."""
    return core.Template(
        name=name,
        label=title,
        query=f"label_values({selector}, {label})",
        dataSource=prometheus(),
        includeAll=True,
        multi=True,
        allValue=ALL,
        default="$__all",
        refresh=REFRESH_ON_TIME_RANGE_CHANGE,
    )


def model() -> core.Template:
    return label_values("model", "model_name", "servewatch_requests_total", "Model")


def version() -> core.Template:
    selector = 'servewatch_requests_total{model_name=~"$model"}'
    return label_values(VERSION, "model_version", selector, "Version")


def tenant() -> core.Template:
    return label_values("tenant", "tenant", "servewatch_requests_total", "Tenant")


def endpoint() -> core.Template:
    selector = 'servewatch_requests_total{model_name=~"$model"}'
    return label_values("endpoint", "endpoint", selector, "Endpoint")
