"""prometheus_client objects made from catalog entries (the one module of core that needs it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.catalog import MetricSpec


def create_metrics(
    specs: Iterable[MetricSpec], registry: CollectorRegistry | None
) -> Mapping[str, Counter | Gauge | Histogram]:
    """prometheus_client objects for `specs`, registered in `registry` (None: unregistered)."""
    metrics: dict[str, Counter | Gauge | Histogram] = {}
    for entry in specs:
        common = {"documentation": entry.help, "labelnames": entry.labels, "registry": registry}
        if entry.kind == "counter":
            metrics[entry.name] = Counter(entry.name, **common)  # type: ignore[arg-type]
        elif entry.kind == "gauge":
            metrics[entry.name] = Gauge(
                entry.name,
                multiprocess_mode=entry.multiprocess_mode,  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
            )
        else:
            metrics[entry.name] = Histogram(
                entry.name,
                buckets=entry.buckets or Histogram.DEFAULT_BUCKETS,
                **common,  # type: ignore[arg-type]
            )
    return metrics
