"""Monitor results: one row of DESIGN.md's contract 3, its JSON form and its stored form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.contracts import Status
from core.timeutil import iso_utc


@dataclass(frozen=True)
class Measurement:
    """A computed metric value and what explains it (the pure computations' output)."""

    value: float | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorResult:
    """One monitor metric for one model, version and tenant over one window."""

    monitor: str
    model_name: str
    model_version: str
    tenant: str
    window_start: datetime
    window_end: datetime
    metric: str
    value: float | None
    threshold: float | None
    status: Status
    n: int
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.monitor, self.metric, self.model_name, self.model_version, self.tenant)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MonitorResult:
        """A stored `monitor_results` row read back (storage.monitor_results)."""
        return cls(
            monitor=str(row["monitor"]),
            model_name=str(row["model_name"]),
            model_version=str(row["model_version"]),
            tenant=str(row["tenant"]),
            window_start=row["window_start"],
            window_end=row["window_end"],
            metric=str(row["metric"]),
            value=row["value"],
            threshold=row["threshold"],
            status=row["status"],
            n=int(row["n"]),
            details=row["details"] or {},
        )

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON object (plus `details`)."""
        return {
            "monitor": self.monitor,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "tenant": self.tenant,
            "window_start": iso_utc(self.window_start),
            "window_end": iso_utc(self.window_end),
            "metric": self.metric,
            "value": finite_or_none(self.value),
            "threshold": finite_or_none(self.threshold),
            "status": self.status,
            "n": int(self.n),
            "details": json_safe(self.details),
        }

    def to_row(self, computed_at: datetime) -> dict[str, Any]:
        """The `monitor_results` row."""
        return {
            "monitor": self.monitor,
            "metric": self.metric,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "tenant": self.tenant,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "value": finite_or_none(self.value),
            "threshold": finite_or_none(self.threshold),
            "status": self.status,
            "n": int(self.n),
            "details": json_safe(self.details) or None,
            "computed_at": computed_at,
        }


def finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """Plain JSON types: numpy scalars become Python numbers, non-finite floats become null."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return iso_utc(value)
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return finite_or_none(value)
    return str(value)
