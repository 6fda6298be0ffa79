"""The prediction log's memory: the bounded queue request threads put records into, and the
records the writer has taken from it and not yet written (encoded ahead where it could)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from storage.writer import Record

# What the records of one event are made from, by the writer thread: (make_records, args).
Later = tuple[Callable[..., Sequence[Record]], tuple[Any, ...]]
# Records travel as rows in `PREDICTION_COLUMNS` order: they become mappings only on their way
# to a spill file (or the rejects), not on the way to the store.
Row = list[Any]
Entry = Row | Later


class LogBuffer:
    """Bounded FIFO between request threads and the writer thread; `put` never blocks."""

    def __init__(
        self, capacity: int, batch_size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.capacity = capacity
        self.enqueued = 0  # entries ever accepted, in order: records and `Later`s
        self.later = 0  # of which `Later`s
        self.closed = False
        self._wanted = batch_size  # how many records the waiting writer asked for
        self._idle = False  # the writer waits for a first record (and wants a wake-up)
        self._flowing = False  # the writer's last take found records
        self._items: deque[Entry] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, entry: Entry) -> bool:
        with self._lock:  # the bare lock: cheaper than entering the condition
            size = len(self._items)
            if size >= self.capacity or self.closed:
                return False
            self._items.append(entry)
            self.enqueued += 1
            if type(entry) is tuple:
                self.later += 1
            # Wake the writer only when it waits for this: under traffic it wakes by the clock,
            # once a tick, and no request pays for a wake-up (nor the writer for one each).
            if (size == 0 and self._idle) or size + 1 == self._wanted:
                self._ready.notify()
            return True

    def take(
        self, linger_s: float, idle_s: float, urgent: Callable[[], bool], at_most: int
    ) -> list[Any]:
        """Up to `at_most` entries: once there are that many, `linger_s` after entries are
        seen (or after this call, when the last take found some), or when `urgent()`; an empty
        list after `idle_s` without entries."""
        with self._ready:
            self._wanted = at_most
            now = self._clock()
            idle_deadline = now + idle_s
            # Records came last time: more are on their way, so linger from now.
            linger_deadline = now + linger_s if self._flowing else None
            while len(self._items) < at_most and not urgent():
                if self._items and linger_deadline is None:
                    linger_deadline = now + linger_s
                deadline = linger_deadline if linger_deadline is not None else idle_deadline
                remaining = deadline - now
                if remaining <= 0:
                    break
                self._idle = linger_deadline is None
                self._ready.wait(remaining)
                now = self._clock()
            self._idle = False
            count = min(len(self._items), at_most)
            self._flowing = count > 0
            return [self._items.popleft() for _ in range(count)]

    def wake(self) -> None:
        with self._ready:
            self._ready.notify()

    def close(self) -> list[Any]:
        """Refuse further records; returns those still held."""
        with self._ready:
            self.closed = True
            items = list(self._items)
            self._items.clear()
            return items


class Staged:
    """Records taken from the queue and not yet written, with their store encoding when it
    was made ahead (always for a prefix of the records)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.records: list[Row] = []
        self.encoded: list[Any] = []
        self.entries = 0  # queue entries the records were made from
        self.since = 0.0  # when the oldest record was taken

    def __len__(self) -> int:
        return self.entries

    def add(self, records: list[Row], entries: int, encode: Callable[[Any], Any] | None) -> None:
        if not self.entries:
            self.since = self._clock()
        self.entries += entries
        aligned = len(self.encoded) == len(self.records)
        self.records.extend(records)
        if encode is None or not aligned:
            return
        # A record that cannot be encoded stops the encoding ahead: the write encodes the rest
        # itself and sets the culprit aside.
        with contextlib.suppress(Exception):
            self.encoded.extend([encode(record) for record in records])

    def take_all(self) -> tuple[list[Row], list[Any], int]:
        staged = self.records, self.encoded, self.entries
        self.records, self.encoded, self.entries = [], [], 0
        return staged
