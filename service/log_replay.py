"""Replay of spill files into the store, a chunk at a time, and adoption of the files that
dead processes left behind."""

from __future__ import annotations

import logging

from service.log_accounting import LogAccounting
from service.log_delivery import StoreDelivery
from service.spill import SpillDirectory

log = logging.getLogger("service.prediction_log")


class SpillReplay:
    """Feeds spilled records back to the store through the log's delivery."""

    def __init__(
        self,
        spill: SpillDirectory,
        delivery: StoreDelivery,
        accounting: LogAccounting,
        *,
        chunk_size: int,
        adopt_interval_s: float,
    ) -> None:
        self.adopt_interval_s = adopt_interval_s
        self.next_adoption = 0.0
        self._spill = spill
        self._delivery = delivery
        self._metrics = accounting
        self._chunk_size = chunk_size

    def adopt_if_due(self, now: float) -> None:
        """Take over orphaned spill files, at most every `adopt_interval_s`."""
        if now < self.next_adoption:
            return
        self.next_adoption = now + self.adopt_interval_s
        adopted = self._spill.adopt_orphans()
        if adopted:
            log.info("prediction log: adopted %d spilled records to replay", adopted)

    def replay_chunk(self) -> None:
        """Store the next chunk of a spill file and advance past it; a failure waits a retry."""
        try:
            found = self._spill.next_chunk(self._chunk_size)
        except OSError as exc:
            log.error("prediction log: cannot read a spill file: %s", exc)
            return
        if found is None:
            return
        spill, chunk = found
        stored = 0
        if chunk.records:
            try:
                stored = self._delivery.store(chunk.records)
            except Exception as exc:
                self._delivery.failed(exc)
                return
            self._delivery.answered()
        try:
            self._spill.commit(spill, chunk)
        except OSError as exc:  # stored already; a later replay of it is a no-op
            log.error("prediction log: cannot advance in %s: %s", spill.path.name, exc)
            self._spill.forget(spill)
        self._metrics.count("replayed", stored)
        if chunk.bad_lines:
            self._metrics.count("dropped", chunk.bad_lines)
            log.error(
                "prediction log: dropped %d unreadable line(s) of %s (torn by a crash?)",
                chunk.bad_lines,
                spill.path.name,
            )
