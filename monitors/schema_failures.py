"""Output-schema failures: the share of inference outputs that came back as `model_error` (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from core.contracts import metric_names
from monitors.results import Measurement

MONITOR = "schema_failures"
METRICS = metric_names(MONITOR)
FAILURE_STATUS = "model_error"
# Statuses of requests whose inference produced an output (good or broken); the others never
# reached the model (rejected, timed out, shed) and say nothing about its output schema.
INFERENCE_STATUSES = ("ok", FAILURE_STATUS)


def inference_count(status_counts: Mapping[str, int]) -> int:
    """Requests whose inference produced an output."""
    return sum(int(status_counts.get(s, 0)) for s in INFERENCE_STATUSES)


def failure_rate(status_counts: Mapping[str, int]) -> dict[str, Measurement]:
    """model_error / (ok + model_error); None when nothing reached the model."""
    failures = int(status_counts.get(FAILURE_STATUS, 0))
    total = inference_count(status_counts)
    details = {"failures": failures, "statuses": {k: int(v) for k, v in status_counts.items()}}
    return {"failure_rate": Measurement(failures / total if total else None, details)}
