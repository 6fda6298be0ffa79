"""Delivery of the prediction log's batches to the store: a batch the store refuses is split
to set the culprits aside (in the rejects file), duplicates are counted, and the store's
health is tracked so that writes pause for `retry_interval_s` after a failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from service.log_accounting import LogAccounting
from service.spill import append_rejected
from storage.engine import Engine
from storage.errors import is_bad_data
from storage.log_engine import prediction_log_engine
from storage.writer import REQUEST_ID, Record, prediction_record, write_predictions

log = logging.getLogger("service.prediction_log")


class StoreDelivery:
    """Writes records to the store for the writer thread, and knows whether it answers."""

    def __init__(
        self,
        database_url: str,
        spill_dir: Path,
        accounting: LogAccounting,
        *,
        retry_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database_url = database_url
        self.spill_dir = spill_dir
        self.retry_interval_s = retry_interval_s
        self.healthy = True
        self.next_attempt = 0.0
        self._metrics = accounting
        self._clock = clock
        self._engine: Engine | None = None

    def due(self) -> bool:
        """Whether a write may be tried now (the store answers, or its retry is due)."""
        return self.healthy or self._clock() >= self.next_attempt

    def store(
        self, records: Sequence[Record], live: bool = False, encoded: Sequence[Any] = ()
    ) -> int:
        """Insert records, returning how many the store took; on bad data, split the batch
        to set the culprits aside."""
        try:
            added = write_predictions(self.engine(), records, encoded)
        except Exception as exc:
            if not is_bad_data(exc):
                raise
            if len(records) == 1:
                self._reject(records, exc)
                return 0
            middle = len(records) // 2
            return self.store(records[:middle], live, encoded[:middle]) + self.store(
                records[middle:], live, encoded[middle:]
            )
        if live and added < len(records):
            self._report_duplicates(records, len(records) - added)
            return added
        return len(records)

    def failed(self, exc: BaseException) -> None:
        self.next_attempt = self._clock() + self.retry_interval_s
        if self.healthy:
            self.healthy = False
            log.warning("prediction log: store unreachable, spilling to disk: %s", _first_line(exc))

    def answered(self) -> None:
        if not self.healthy:
            self.healthy = True
            log.info("prediction log: store reachable again; replaying spill files")

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = prediction_log_engine(self.database_url)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _report_duplicates(self, records: Sequence[Record], missing: int) -> None:
        """A live record whose request_id is already stored (a client reusing X-Request-ID)
        leaves no row of its own: count it as dropped and say so."""
        self._metrics.count("dropped", missing)
        ids = sorted({str(_request_id(r)) for r in records})[:5]
        log.error(
            "prediction log: %d record(s) reused a stored request_id and were not stored "
            "(request ids among %s)",
            missing,
            ids,
        )

    def _reject(self, records: Sequence[Record], exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        try:
            path = append_rejected(self.spill_dir, [prediction_record(r) for r in records], reason)
            where = f"kept in {path}"
        except OSError as write_error:
            where = f"not kept ({write_error})"
        self._metrics.count("dropped", len(records))
        log.error(
            "prediction log: the store rejected %d record(s), %s: %s", len(records), where, reason
        )


def _request_id(record: Record) -> Any:
    return record[REQUEST_ID] if type(record) is list else record.get("request_id")  # type: ignore[union-attr]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
