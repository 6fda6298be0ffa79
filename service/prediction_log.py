"""The prediction log: request threads hand records (or what to make them from) to a bounded
in-memory queue; one background thread makes and encodes them as they arrive, writes them to
the store in batches and spills them to local disk when the store cannot take them, replaying
the spill files once it can.

Accounting (the `event` label of servewatch_prediction_log_records_total): every record is
`queued` (when submitted, or when the writer makes it from a `submit_later` entry), then ends
up `written` (store), `spilled` (fsynced to a spill file) or `dropped` (counted and logged: the
spill write failed, the store rejects the record as bad data, or its maker failed). Spilled
records are later `replayed` into the store, by this process or by whichever process adopts
the file. queued - written - spilled - dropped is what sits in memory as records.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from service.spill import SpillDirectory, append_rejected
from storage.engine import Engine
from storage.errors import is_bad_data
from storage.log_engine import prediction_log_engine
from storage.writer import (
    REQUEST_ID,
    Record,
    prediction_encoder,
    prediction_record,
    prediction_row,
    write_predictions,
)

log = logging.getLogger(__name__)

RECORDS_TOTAL = "servewatch_prediction_log_records_total"
SPILL_BACKLOG = "servewatch_prediction_log_spill_backlog"
REPLAY_LAG = "servewatch_prediction_log_replay_lag_seconds"
EVENTS = ("queued", "written", "spilled", "replayed", "dropped")
# While traffic flows the writer wakes this often, makes the records of what the queue holds
# and encodes them for the store, writing them later in batches. Encoding a whole batch at
# write time held the GIL for milliseconds and the requests in flight stalled (session 4, when a
# record cost 8 µs); each wake-up, though, is a GIL hand-off from the busy event loop, which
# costs the waking thread alone ~60 µs of CPU on this VM. At ~2 µs a record now, 0.25 s measured
# best (throughput ratio 0.956-0.957, p99 1.05, against 0.951-0.955 and p99 1.06-1.09 at 0.05 s
# and 0.947 at 0.5 s; docs/benchmarks.md, session 6). A queue that outpaces the writer is not
# encoded ahead: the batch's COPY encodes as it streams, so the store parses one chunk while
# the next is made.
ENCODE_TICK_S = 0.25


# What the records of one event are made from, by the writer thread: (make_records, args).
Later = tuple[Callable[..., Sequence[Record]], tuple[Any, ...]]
# Records travel as rows in `PREDICTION_COLUMNS` order: they become mappings only on their way
# to a spill file (or the rejects), not on the way to the store.
Row = list[Any]
Entry = Row | Later


class _Buffer:
    """Bounded FIFO between request threads and the writer thread; `put` never blocks."""

    def __init__(self, capacity: int, batch_size: int) -> None:
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
            now = time.monotonic()
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
                now = time.monotonic()
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


class _Staged:
    """Records taken from the queue and not yet written, with their store encoding when it
    was made ahead (always for a prefix of the records)."""

    def __init__(self) -> None:
        self.records: list[Row] = []
        self.encoded: list[Any] = []
        self.entries = 0  # queue entries the records were made from
        self.since = 0.0  # when the oldest record was taken

    def __len__(self) -> int:
        return self.entries

    def add(self, records: list[Row], entries: int, encode: Callable[[Any], Any] | None) -> None:
        if not self.entries:
            self.since = time.monotonic()
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


class _Metrics:
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


class PredictionLog:
    """Bounded in-memory queue drained by a background writer thread; spills to disk when the
    store is down. `queue_size` counts entries (a record, or a `submit_later` event whatever
    its number of records); `batch_size` counts records per write."""

    def __init__(
        self,
        database_url: str,
        spill_dir: Path,
        *,
        queue_size: int = 100_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        metrics: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        retry_interval_s: float = 1.0,
        adopt_interval_s: float = 5.0,
        tick_s: float = ENCODE_TICK_S,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        self.database_url = database_url
        self.spill_dir = Path(spill_dir)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.adopt_interval_s = adopt_interval_s
        self.tick_s = tick_s
        self._clock = clock
        self._metrics = _Metrics(metrics)
        self._buffer = _Buffer(queue_size, batch_size)
        self._staged = _Staged()  # touched by the writer thread only
        self._encode = prediction_encoder(database_url)
        self._spill = SpillDirectory(self.spill_dir)
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._healthy = True
        self._next_attempt = 0.0
        self._next_adoption = 0.0
        # Records the queue was full for: spilled by the caller once a batch gathers, or by
        # the writer at its next turn, whichever comes first.
        self._overflow: list[Row] = []
        self._overflow_lock = threading.Lock()
        self._overflow_accepted = 0
        self._late = False  # the writer is gone: submissions go straight to disk
        # `queued` is counted in plain ints on the request path and published in bulk.
        self._queued_published = 0
        self._publish_lock = threading.Lock()
        self._overflow_settled = 0
        self._queue_settled = 0
        self._flush_target = 0
        self._flush_overflow_target = 0
        self._progress = threading.Condition(threading.Lock())

    # -- public API ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (idempotent); it first replays spill files left behind."""
        if self._thread is not None:
            return
        if self._closed:
            raise RuntimeError("the prediction log is closed")
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        """Hand over one record (a mapping, or a row in `PREDICTION_COLUMNS` order); never
        blocks on the store, never raises for a full queue."""
        row = prediction_row(record)
        if not self._buffer.put(row):
            self._overflowed([row])

    def submit_later(self, make_records: Callable[..., Sequence[Record]], *args: Any) -> None:
        """Hand over what one event's records are made from: the writer thread calls
        `make_records(*args)`, which keeps that work off the caller's path. The arguments must
        not change afterwards; the records it returns (rows or mappings) are the log's."""
        entry = (make_records, args)
        if not self._buffer.put(entry):
            self._overflowed(self._make(entry))

    def _overflowed(self, records: list[Row]) -> None:
        """Records the queue was full for (or came after the writer stopped)."""
        with self._overflow_lock:
            self._overflow.extend(records)
            self._overflow_accepted += len(records)
            if len(self._overflow) >= self.batch_size or self._late:
                self._spill_overflow_locked()
            if self._late:
                self._release_spill()
                self._publish_queued()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is durable (in the store or a spill file)."""
        queue_target = self._buffer.enqueued
        with self._overflow_lock:
            overflow_target = self._overflow_accepted
        self._publish_queued()
        if self._thread is None or not self._thread.is_alive():
            return self._queue_settled >= queue_target and self._overflow_settled >= overflow_target
        with self._progress:
            self._flush_target = max(self._flush_target, queue_target)
            self._flush_overflow_target = max(self._flush_overflow_target, overflow_target)
        self._buffer.wake()
        with self._progress:
            return self._progress.wait_for(
                lambda: (
                    self._queue_settled >= queue_target
                    and self._overflow_settled >= overflow_target
                ),
                timeout,
            )

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop; what cannot reach the store stays in spill files for a later replay."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is not None:
            self.flush(timeout)
            self._stopping = True
            self._buffer.wake()
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                log.error(
                    "prediction log: the writer did not stop within %.1fs (store hanging?); "
                    "parking the queue on disk, the batch in flight is lost if the process "
                    "exits before the store answers",
                    timeout,
                )
        self._park_leftovers()
        if self._engine is not None and not (thread is not None and thread.is_alive()):
            self._engine.dispose()

    @property
    def healthy(self) -> bool:
        """Whether the store was reachable at the last attempt."""
        return self._healthy

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                stopping = self._stopping
                self._stage(stopping)
                if self._staged:
                    if not (stopping or self._write_due()):
                        continue  # between writes the writer only encodes: ticks stay cheap
                    records, encoded, entries = self._staged.take_all()
                    self._deliver(records, encoded)
                    self._settle(entries)
                with self._overflow_lock:
                    self._spill_overflow_locked()
                self._publish_queued()
                self._maintain(stopping)
                if stopping and not len(self._buffer) and not self._staged:
                    break
        except Exception:  # pragma: no cover - a bug; records must not die silently with it
            log.exception("prediction log: the writer thread failed")
            raise
        finally:
            self._release_spill()

    def _stage(self, stopping: bool) -> None:
        """Take what the queue holds (waiting a tick at most) and encode it ahead, unless the
        batch is full with it (the writer is behind) or it is going to the spill file."""
        wanted = max(self.batch_size - len(self._staged.records), 1)
        entries = self._buffer.take(*self._waits(), self._urgent, wanted)
        if not entries:
            return
        ahead = len(entries) < wanted and not stopping and self._healthy
        self._staged.add(self._records_of(entries), len(entries), self._encode if ahead else None)

    def _records_of(self, entries: list[Entry]) -> list[Row]:
        """The records of queue entries, making those handed over as `submit_later`."""
        if all(type(entry) is list for entry in entries):
            return entries  # type: ignore[return-value]
        records: list[Row] = []
        made = 0
        for entry in entries:
            if type(entry) is list:
                records.append(entry)  # type: ignore[arg-type]
            else:
                before = len(records)
                records.extend(self._make(entry))  # type: ignore[arg-type]
                made += len(records) - before
        self._metrics.count("queued", made)  # once per take: each update is a locked write
        return records

    def _make(self, entry: Later) -> list[Row]:
        make_records, args = entry
        try:
            # Rows are copied too (~0.1 µs): that checks their width, and the log owns them.
            return [prediction_row(record) for record in make_records(*args)]
        except Exception:  # a bug in the maker: the event's records are lost, loudly
            self._metrics.count("queued")
            self._metrics.count("dropped")
            log.exception("prediction log: could not make the records of an event; dropped")
            return []

    def _waits(self) -> tuple[float, float]:
        """How long take() may linger for more records, and wait idle for a first one."""
        now = time.monotonic()
        if self._replay_ready(now):
            return 0.0, 0.0
        linger = min(self.tick_s, self.flush_interval_s)
        if self._staged:  # the next write is due by then, and the upkeep follows it
            write_in = max(self._staged.since + self.flush_interval_s - now, 0.0)
            return min(linger, write_in), write_in
        wake_at = self._next_adoption
        if self._spill.backlog:
            wake_at = min(wake_at, self._next_attempt)
        return linger, min(max(wake_at - now, 0.0), 1.0)

    def _write_due(self) -> bool:
        """A full batch, the flush interval over, a flush waiting, or a replay about to run
        (the staged records go first, so that nothing sits in the writer's hands meanwhile)."""
        now = time.monotonic()
        return (
            len(self._staged.records) >= self.batch_size
            or now - self._staged.since >= self.flush_interval_s
            or self._urgent()
            or self._replay_ready(now)
        )

    def _urgent(self) -> bool:
        return (
            self._stopping
            or self._flush_target > self._queue_settled
            or self._flush_overflow_target > self._overflow_settled
        )

    def _settle(self, queued: int) -> None:
        with self._progress:
            self._queue_settled += queued
            self._progress.notify_all()

    def _deliver(self, batch: list[Row], encoded: Sequence[Any]) -> None:
        """Write a batch to the store, or spill it when the store is (known to be) down."""
        if not batch:
            return
        if not self._store_due():
            self._spill_records(batch)
            return
        try:
            stored = self._store(batch, live=True, encoded=encoded)
        except Exception as exc:
            self._store_failed(exc)
            self._spill_records(batch)
            return
        self._store_answered()
        self._metrics.count("written", stored)

    def _store(
        self, records: Sequence[Record], live: bool = False, encoded: Sequence[Any] = ()
    ) -> int:
        """Insert records, returning how many the store took; on bad data, split the batch
        to set the culprits aside."""
        try:
            added = write_predictions(self._store_engine(), records, encoded)
        except Exception as exc:
            if not is_bad_data(exc):
                raise
            if len(records) == 1:
                self._reject(records, exc)
                return 0
            middle = len(records) // 2
            return self._store(records[:middle], live, encoded[:middle]) + self._store(
                records[middle:], live, encoded[middle:]
            )
        if live and added < len(records):
            self._report_duplicates(records, len(records) - added)
            return added
        return len(records)

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

    def _replay_ready(self, now: float) -> bool:
        return (
            not self._stopping
            and self._spill.backlog > 0
            and (self._healthy or now >= self._next_attempt)
            and len(self._buffer) < self.batch_size
        )

    def _maintain(self, stopping: bool) -> None:
        """Adopt orphaned spill files now and then, replay one chunk when the store is up."""
        now = time.monotonic()
        if now >= self._next_adoption and not stopping:
            self._next_adoption = now + self.adopt_interval_s
            adopted = self._spill.adopt_orphans()
            if adopted:
                log.info("prediction log: adopted %d spilled records to replay", adopted)
        if self._replay_ready(now):
            self._replay_chunk()
        self._publish_spill_state()

    def _replay_chunk(self) -> None:
        try:
            found = self._spill.next_chunk(self.batch_size)
        except OSError as exc:
            log.error("prediction log: cannot read a spill file: %s", exc)
            return
        if found is None:
            return
        spill, chunk = found
        stored = 0
        if chunk.records:
            try:
                stored = self._store(chunk.records)
            except Exception as exc:
                self._store_failed(exc)
                return
            self._store_answered()
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

    def _store_engine(self) -> Engine:
        if self._engine is None:
            self._engine = prediction_log_engine(self.database_url)
        return self._engine

    def _store_due(self) -> bool:
        return self._healthy or time.monotonic() >= self._next_attempt

    def _store_failed(self, exc: BaseException) -> None:
        self._next_attempt = time.monotonic() + self.retry_interval_s
        if self._healthy:
            self._healthy = False
            log.warning("prediction log: store unreachable, spilling to disk: %s", _first_line(exc))

    def _store_answered(self) -> None:
        if not self._healthy:
            self._healthy = True
            log.info("prediction log: store reachable again; replaying spill files")

    # -- spilling --------------------------------------------------------------------------

    def _spill_records(self, records: Sequence[Record]) -> bool:
        """Append records to a spill file; count them dropped if even that fails."""
        try:
            self._spill.append([prediction_record(r) for r in records])
        except Exception as exc:  # OSError mostly (disk full); anything else must not kill us
            self._metrics.count("dropped", len(records))
            log.error(
                "prediction log: dropped %d records, spill to %s failed: %s",
                len(records),
                self.spill_dir,
                exc,
            )
            return False
        self._metrics.count("spilled", len(records))
        self._publish_spill_state()
        return True

    def _spill_overflow_locked(self) -> None:
        """Spill the overflow list (caller holds the overflow lock, which keeps FIFO order)."""
        if not self._overflow:
            return
        records, self._overflow = self._overflow, []
        self._spill_records(records)
        with self._progress:
            self._overflow_settled += len(records)
            self._progress.notify_all()

    def _park_leftovers(self) -> None:
        """After the writer is gone (or never ran): put what is still in memory on disk."""
        entries = self._buffer.close()
        records = self._records_of(entries)
        if records:
            self._spill_records(records)
        self._settle(len(entries))
        with self._overflow_lock:
            self._late = True
            self._spill_overflow_locked()
        self._release_spill()
        self._publish_queued()

    def _release_spill(self) -> None:
        """Let go of every spill file: from now on other processes own (and count) them."""
        self._spill.release_all()
        self._metrics.spill_state(0, 0.0)

    def _publish_queued(self) -> None:
        with self._publish_lock:
            # Records made by the writer are counted as it makes them.
            total = self._buffer.enqueued - self._buffer.later + self._overflow_accepted
            self._metrics.count("queued", total - self._queued_published)
            self._queued_published = total

    def _publish_spill_state(self) -> None:
        oldest = self._spill.oldest
        lag = max(self._clock() - oldest, 0.0) if oldest is not None else 0.0
        self._metrics.spill_state(self._spill.backlog, lag)


def _request_id(record: Record) -> Any:
    return record[REQUEST_ID] if type(record) is list else record.get("request_id")  # type: ignore[union-attr]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
