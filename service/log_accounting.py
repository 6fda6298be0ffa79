"""The prediction log's accounting: its records by event, and the spill backlog and lag.

Every record is `queued` (when submitted, or when the writer makes it from a `submit_later`
entry), then ends up `written` (store), `spilled` (fsynced to a spill file) or `dropped`
(counted and logged). Spilled records are later `replayed` into the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECORDS_TOTAL = "servewatch_prediction_log_records_total"
SPILL_BACKLOG = "servewatch_prediction_log_spill_backlog"
REPLAY_LAG = "servewatch_prediction_log_replay_lag_seconds"
EVENTS = ("queued", "written", "spilled", "replayed", "dropped")


class LogAccounting:
    """The log's catalog series, or nothing when no metrics were given."""

    def __init__(self, metrics: Mapping[str, Any] | None) -> None:
        metrics = metrics or {}
        counter = metrics.get(RECORDS_TOTAL)
        self._events = {e: counter.labels(event=e) for e in EVENTS} if counter else {}
        self._backlog = metrics.get(SPILL_BACKLOG)
        self._lag = metrics.get(REPLAY_LAG)

    def count(self, event: str, n: int = 1) -> None:
        child = self._events.get(event)
        if child is not None and n:
            child.inc(n)

    def spill_state(self, backlog: int, lag_s: float) -> None:
        if self._backlog is not None:
            self._backlog.set(backlog)
        if self._lag is not None:
            self._lag.set(lag_s)
