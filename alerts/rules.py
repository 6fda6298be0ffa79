"""Prometheus rules as values: recording rules, alerting rules and their groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class AlertRule:
    """An alert with the conventions: severity label, summary, templated description, runbook."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    runbook_url: str
    for_: str = "0m"
    labels: Mapping[str, str] = field(default_factory=dict)
    # More annotations after the conventional ones (links such as report_url).
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def all_labels(self) -> dict[str, str]:
        """The labels the rule adds to every alert it fires."""
        return {**self.labels, "severity": self.severity}

    @property
    def annotations(self) -> dict[str, str]:
        return {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            **self.extra,
        }

    def to_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ not in ("0m", "0s"):
            rule["for"] = self.for_
        rule["labels"] = self.all_labels
        rule["annotations"] = self.annotations
        return rule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[RecordingRule | AlertRule, ...]

    @property
    def alerts(self) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, AlertRule))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.to_dict() for rule in self.rules]}
