"""The prediction log's write-ahead journal: a request's records reach the kernel before its
answer is sent, so a worker killed at any moment loses nothing that was answered.

Each worker appends to segment files of its own (`journal-<pid>-<uuid>.jsonl` in the spill
folder: one JSON array per record, in `PREDICTION_COLUMNS` order), one `write` per event-loop
turn for the requests answered in it (`service/log_tick.py`), and holds an exclusive `flock` on
each segment for its life. The in-memory queue still carries the records to the store; the
journal is only read when its writer died: the kernel then drops the locks, and a sibling or
restarted worker adopts the segments like spill files and replays them (idempotent: the store
refuses known request ids). A segment is deleted once every record in it is settled (in the
store, in a spill file, or dropped and counted).

Durability: a record is in the page cache when its answer goes out, so it survives the death
of the process. A machine crash loses what was not yet fsynced: `fsync="interval"` syncs the
active segment every `fsync_interval_s`, `"batch"` at every turn of the writer (0.25 s at most
under traffic), `"off"` leaves it to the kernel's writeback (about 30 s on Linux).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from service.spill import JOURNAL_PREFIX, SUFFIX, LockedFile

log = logging.getLogger("service.prediction_log")

FsyncPolicy = Literal["off", "batch", "interval"]
MAX_SEGMENT_BYTES = 16 * 1024 * 1024


class Segment(LockedFile):
    """One journal file this process writes and holds the lock of."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{JOURNAL_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.size = 0
        self.pending = 0  # records appended and not settled yet
        self.sealed = False
        self.synced_size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(data)

    def sync(self) -> None:
        if self.size != self.synced_size:
            os.fsync(self.fd)
            self.synced_size = self.size


class Journal:
    """This process's segments: `append` on the request path, `settle` and `sync` from the
    writer thread. Thread-safe; appending costs one `write` (no fsync)."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: FsyncPolicy = "interval",
        fsync_interval_s: float = 1.0,
        max_segment_bytes: int = MAX_SEGMENT_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self.max_segment_bytes = max_segment_bytes
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._active: Segment | None = None
        self._next_sync = 0.0
        self.failures = 0  # appends that could not be written (the records stay in memory)

    def append(self, rows: Sequence[Sequence[Any]]) -> Segment | None:
        """Write rows to the active segment in one `write`; the segment, to settle them later.
        None when the write failed (disk full): the records then live in memory only."""
        data = encode_rows(rows)
        with self._lock:
            try:
                segment = self._writable()
                segment.write(data)
            except OSError as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 1000 == 0:
                    log.error("prediction log: journal write failed (%d): %s", self.failures, exc)
                return None
            segment.pending += len(rows)
            return segment

    def settle(self, settled: Iterable[tuple[Segment, int]]) -> None:
        """Records are durable elsewhere now; a sealed segment with none left is deleted."""
        with self._lock:
            for segment, count in settled:
                segment.pending -= count
            for segment in [s for s in self._segments if s.sealed and s.pending <= 0]:
                segment.discard()
                self._segments.remove(segment)

    def sync_if_due(self, turn: bool) -> None:
        """fsync per the policy: at every writer turn (`batch`) or every interval."""
        if self.fsync == "off":
            return
        now = self._monotonic()
        if self.fsync == "interval" and now < self._next_sync:
            return
        self._next_sync = now + self.fsync_interval_s
        if self.fsync == "batch" and not turn:
            return
        with self._lock:
            active = self._active
        if active is not None:
            try:
                active.sync()
            except OSError as exc:
                log.error("prediction log: journal fsync failed: %s", exc)

    def close(self) -> None:
        """Delete the segments whose records are all settled, keep (and unlock) the others for
        another process to adopt."""
        with self._lock:
            for segment in self._segments:
                if segment.pending <= 0:
                    segment.discard()
                else:
                    log.error(
                        "prediction log: %d records left in %s for a later replay",
                        segment.pending,
                        segment.path.name,
                    )
                    segment.release()
            self._segments.clear()
            self._active = None

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(s.pending for s in self._segments)

    def _writable(self) -> Segment:
        active = self._active
        if active is None or active.size >= self.max_segment_bytes:
            if active is not None:
                active.sealed = True
            active = Segment(self.directory)
            self._segments.append(active)
            self._active = active
        return active


def encode_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows as JSON arrays, one a line (times in ISO 8601); json for what orjson refuses."""
    try:
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    except (TypeError, ValueError, OverflowError):
        return b"".join(
            json.dumps(list(row), default=str, separators=(",", ":")).encode() + b"\n"
            for row in rows
        )
