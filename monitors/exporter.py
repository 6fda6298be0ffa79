"""Monitor results as the catalog's Prometheus gauges, in a registry the caller owns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge

from core.catalog import MONITOR_METRICS
from core.config import AppConfig
from core.contracts import STATUS_CODES
from core.metrics import create_metrics
from monitors.results import MonitorResult

RESULT_GAUGES = (
    "servewatch_monitor_value",
    "servewatch_monitor_status",
    "servewatch_monitor_sample_size",
)
LabelValues = tuple[str, ...]


class MonitorExporter:
    """Sets the monitor gauges from run outcomes; series of groups that vanished are removed."""

    def __init__(self, registry: CollectorRegistry, config: AppConfig) -> None:
        self.metrics: Mapping[str, Any] = create_metrics(MONITOR_METRICS, registry)
        self._results: dict[str, set[LabelValues]] = {}
        self._costs: set[LabelValues] = set()
        self._per_1k: set[LabelValues] = set()
        self._week: set[LabelValues] = set()
        self._last_run: dict[str, float] = {}
        self._set_config(config)

    def _gauge(self, name: str) -> Gauge:
        gauge: Gauge = self.metrics[name]
        return gauge

    def _set_config(self, config: AppConfig) -> None:
        schedules = self._gauge("servewatch_monitor_schedule_seconds")
        for monitor, plan in config.monitors.schedules.items():
            schedules.labels(monitor).set(plan.every_seconds)
        thresholds = self._gauge("servewatch_monitor_threshold")
        for monitor, metrics in config.monitors.thresholds.items():
            for metric, threshold in metrics.items():
                thresholds.labels(monitor, metric, "warn").set(threshold.warn)
                thresholds.labels(monitor, metric, "alert").set(threshold.alert)
        budgets = self._gauge("servewatch_tenant_weekly_budget_usd")
        for tenant, tenant_config in config.tenants.items():
            if tenant_config.weekly_budget_usd is not None:
                budgets.labels(tenant).set(tenant_config.weekly_budget_usd)

    def publish(self, monitor: str, results: Iterable[MonitorResult]) -> None:
        """Make `results` the monitor's current values (the newest window wins)."""
        value = self._gauge("servewatch_monitor_value")
        status = self._gauge("servewatch_monitor_status")
        size = self._gauge("servewatch_monitor_sample_size")
        published: set[LabelValues] = set()
        for result in results:
            labels: LabelValues = result.key
            published.add(labels)
            status.labels(*labels).set(STATUS_CODES[result.status])
            size.labels(*labels).set(result.n)
            if result.value is None:
                _remove(value, labels)
            else:
                value.labels(*labels).set(result.value)
        for stale in self._results.get(monitor, set()) - published:
            for name in RESULT_GAUGES:
                _remove(self._gauge(name), stale)
        self._results[monitor] = published

    def publish_costs(self, costs: pd.DataFrame) -> None:
        """Cost per model, version, tenant and endpoint, and cost per 1,000 predictions."""
        cost = self._gauge("servewatch_cost_usd")
        per_1k = self._gauge("servewatch_cost_per_1k_predictions_usd")
        published: set[LabelValues] = set()
        for row in costs.itertuples(index=False):
            key = (row.model_name, row.model_version, row.tenant, row.endpoint)
            for kind, amount in (
                ("attributed", row.attributed_cost_usd),
                ("idle", row.idle_cost_usd),
            ):
                labels: LabelValues = tuple(str(v) for v in (*key, kind))
                cost.labels(*labels).set(float(amount))
                published.add(labels)
        self._replace(cost, self._costs, published)
        self._costs = published
        versions: set[LabelValues] = set()
        if not costs.empty:
            totals = costs.groupby(["model_name", "model_version"])[["n", "attributed_cost_usd"]]
            for (model, version), row in totals.sum().iterrows():
                if row["n"] > 0:
                    labels = (str(model), str(version))
                    per_1k.labels(*labels).set(row["attributed_cost_usd"] / row["n"] * 1000)
                    versions.add(labels)
        self._replace(per_1k, self._per_1k, versions)
        self._per_1k = versions

    def publish_week_costs(self, by_tenant: Mapping[str, float]) -> None:
        """Cost of the ISO week so far per tenant."""
        gauge = self._gauge("servewatch_tenant_week_cost_usd")
        published: set[LabelValues] = set()
        for tenant, amount in by_tenant.items():
            gauge.labels(tenant).set(amount)
            published.add((tenant,))
        self._replace(gauge, self._week, published)
        self._week = published

    def record_run(
        self, monitor: str, success: bool, duration_s: float, finished_at: float
    ) -> None:
        """Count a run; a success also stamps the monitor's last-success and last-run times."""
        runs: Counter = self.metrics["servewatch_monitor_runs_total"]
        runs.labels(monitor, "success" if success else "failure").inc()
        self._gauge("servewatch_monitor_run_duration_seconds").labels(monitor).set(duration_s)
        if success:
            last = self._gauge("servewatch_monitor_last_success_timestamp_seconds")
            last.labels(monitor).set(finished_at)
            self.restore_last_run(monitor, finished_at)

    def restore_last_run(self, monitor: str, finished_at: float) -> None:
        """Stamp a completed run (one read back from monitor_results too); never goes back."""
        latest = max(self._last_run.get(monitor, finished_at), finished_at)
        self._last_run[monitor] = latest
        self._gauge("servewatch_monitor_last_run_timestamp_seconds").labels(monitor).set(latest)

    @staticmethod
    def _replace(gauge: Gauge, before: set[LabelValues], after: set[LabelValues]) -> None:
        for labels in before - after:
            _remove(gauge, labels)


def _remove(gauge: Gauge, labels: LabelValues) -> None:
    with suppress(KeyError):
        gauge.remove(*labels)
