"""The prediction log: request threads hand records (or what to make them from) to a bounded
in-memory queue; one background thread makes and encodes them as they arrive, writes them to
the store in batches and spills them to local disk when the store cannot take them, replaying
the spill files once it can.

`PredictionLog` composes the parts: the queue and the staged records (log_buffer), delivery to
the store (log_delivery), replay of spill files (log_replay) and the accounting
(log_accounting). Every time read goes through its injected clocks, and `run_once()` turns the
writer by hand, so tests drive it without sleeping.
What stays here (~460 lines) is one state machine: the hand-off from request threads, the
journal's settlement, the overflow, the flush and close bookkeeping and the writer's turn share
their counters and locks.

Accounting (the `event` label of servewatch_prediction_log_records_total): every record is
`queued` (when submitted, or when the writer makes it from a `submit_later` entry), then ends
up `written` (store), `spilled` (fsynced to a spill file) or `dropped` (counted and logged: the
spill write failed, the store rejects the record as bad data, or its maker failed). Spilled
records are later `replayed` into the store, by this process or by whichever process adopts
the file. queued - written - spilled - dropped is what sits in memory as records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from service.background import yield_to_requests
from service.log_accounting import LogAccounting
from service.log_buffer import Entry, Later, LogBuffer, Row, Staged
from service.log_delivery import StoreDelivery
from service.log_journal import Journal, Segment
from service.log_replay import SpillReplay
from service.spill import SpillDirectory
from storage.writer import Record, prediction_encoder, prediction_record, prediction_row

log = logging.getLogger(__name__)

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

# An answered request's rows, what completes them on the writer thread, and its arguments.
Answered = tuple[list[Row], Callable[..., None] | None, tuple[Any, ...]]


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
        monotonic: Callable[[], float] = time.monotonic,
        retry_interval_s: float = 1.0,
        adopt_interval_s: float = 5.0,
        tick_s: float = ENCODE_TICK_S,
        journal: Journal | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        self.database_url = database_url
        self.spill_dir = Path(spill_dir)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.tick_s = tick_s
        self._clock = clock  # wall time: spill files are stamped with it
        self._monotonic = monotonic  # deadlines and intervals
        self._metrics = LogAccounting(metrics)
        self._buffer = LogBuffer(queue_size, batch_size, monotonic)
        self._staged = Staged(monotonic)  # touched by the writer thread only
        self._encode = prediction_encoder(database_url)
        self._spill = SpillDirectory(self.spill_dir)
        self._delivery = StoreDelivery(
            database_url,
            self.spill_dir,
            self._metrics,
            retry_interval_s=retry_interval_s,
            clock=monotonic,
        )
        self._replay = SpillReplay(
            self._spill,
            self._delivery,
            self._metrics,
            chunk_size=batch_size,
            adopt_interval_s=adopt_interval_s,
        )
        self._journal = journal
        # Journal segments of the records staged or overflowed, settled once those are durable.
        self._staged_segments: list[tuple[Segment, int]] = []
        self._overflow_segments: list[tuple[Segment, int]] = []
        self._thread: threading.Thread | None = None
        self._stepping = False  # driven by run_once(): the writer never waits
        self._stopping = False
        self._closed = False
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

    def submit_journaled(
        self, rows: list[Row], fill: Callable[..., None] | None = None, *args: Any
    ) -> None:
        """Hand over an answered request's rows after writing them to the journal (before its
        answer is sent: the caller's thread pays one `write`). `fill(rows, *args)` completes
        them on the writer thread (what is too costly for the request path)."""
        self.submit_journaled_many([(rows, fill, args)])

    def submit_journaled_many(self, answers: list[Answered]) -> None:
        """`submit_journaled` for several answered requests (`(rows, fill, args)` each: say, one
        event-loop tick's) with one journal `write` and one queue entry between them."""
        if self._journal is None:
            raise RuntimeError("this log has no journal")
        segment = self._journal.append([row for answer in answers for row in answer[0]])
        entry = (self._journaled, (segment, answers))
        if not self._buffer.put(entry):
            self._overflowed(self._make(entry), _segments_of([entry]))

    @staticmethod
    def _journaled(_segment: Segment | None, answers: list[Answered]) -> list[Row]:
        return [row for answer in answers for row in _filled(*answer)]

    def _overflowed(self, records: list[Row], segments: Sequence[tuple[Segment, int]] = ()) -> None:
        """Records the queue was full for (or came after the writer stopped)."""
        with self._overflow_lock:
            self._overflow.extend(records)
            self._overflow_segments.extend(segments)
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
        deadline = self._monotonic() + timeout
        thread = self._thread
        if thread is not None:
            self.flush(timeout)
            self._stopping = True
            self._buffer.wake()
            thread.join(max(deadline - self._monotonic(), 0.0))
            if thread.is_alive():
                log.error(
                    "prediction log: the writer did not stop within %.1fs (store hanging?); "
                    "parking the queue on disk, the batch in flight is lost if the process "
                    "exits before the store answers",
                    timeout,
                )
        self._park_leftovers()
        if not (thread is not None and thread.is_alive()):
            self._delivery.dispose()

    @property
    def healthy(self) -> bool:
        """Whether the store was reachable at the last attempt."""
        return self._delivery.healthy

    def run_once(self) -> bool:
        """One turn of the writer, on the caller's thread and without waiting (for tests that
        drive the log with a fake clock instead of starting it); True once stopped."""
        if self._thread is not None:
            raise RuntimeError("the writer thread drives this log")
        self._stepping = True
        return self._step()

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        yield_to_requests()
        try:
            while not self._step():
                pass
        except Exception:  # pragma: no cover - a bug; records must not die silently with it
            log.exception("prediction log: the writer thread failed")
            raise
        finally:
            self._release_spill()

    def _step(self) -> bool:
        """Stage what the queue holds, write it when due, then upkeep; True once stopped."""
        stopping = self._stopping
        self._stage(stopping)
        if self._staged:
            if not (stopping or self._write_due()):
                return False  # between writes the writer only encodes: ticks stay cheap
            records, encoded, entries = self._staged.take_all()
            self._deliver(records, encoded)
            self._settle(entries)
            self._settle_journal(self._staged_segments)
            self._staged_segments = []
        with self._overflow_lock:
            self._spill_overflow_locked()
        self._publish_queued()
        self._maintain(stopping)
        if self._journal is not None:
            self._journal.sync_if_due(turn=True)
        return stopping and not len(self._buffer) and not self._staged

    def _stage(self, stopping: bool) -> None:
        """Take what the queue holds (waiting a tick at most) and encode it ahead, unless the
        batch is full with it (the writer is behind) or it is going to the spill file."""
        wanted = max(self.batch_size - len(self._staged.records), 1)
        waits = (0.0, 0.0) if self._stepping else self._waits()
        entries = self._buffer.take(*waits, self._urgent, wanted)
        if not entries:
            return
        ahead = len(entries) < wanted and not stopping and self._delivery.healthy
        self._staged.add(self._records_of(entries), len(entries), self._encode if ahead else None)
        if self._journal is not None:
            self._staged_segments.extend(_segments_of(entries))

    def _records_of(self, entries: list[Entry]) -> list[Row]:
        """The records of queue entries, making those handed over as `submit_later`."""
        if all(type(entry) is list for entry in entries):
            return entries  # type: ignore[return-value]
        records: list[Row] = []
        made = 0
        for entry in entries:
            if type(entry) is list:
                records.append(entry)
            else:
                before = len(records)
                records.extend(self._make(entry))  # type: ignore[arg-type]
                made += len(records) - before
        self._metrics.count("queued", made)  # once per take: each update is a locked write
        return records

    def _make(self, entry: Later) -> list[Row]:
        make_records, args = entry
        if make_records is PredictionLog._journaled and len(args[1]) > 1:
            # A tick's answers: one that cannot be completed costs only its own records.
            return [row for answer in args[1] for row in self._make((_filled, answer))]
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
        now = self._monotonic()
        if self._replay_ready(now):
            return 0.0, 0.0
        linger = min(self.tick_s, self.flush_interval_s)
        if self._staged:  # the next write is due by then, and the upkeep follows it
            write_in = max(self._staged.since + self.flush_interval_s - now, 0.0)
            return min(linger, write_in), write_in
        wake_at = self._replay.next_adoption
        if self._spill.backlog:
            wake_at = min(wake_at, self._delivery.next_attempt)
        return linger, min(max(wake_at - now, 0.0), 1.0)

    def _write_due(self) -> bool:
        """A full batch, the flush interval over, a flush waiting, or a replay about to run
        (the staged records go first, so that nothing sits in the writer's hands meanwhile)."""
        now = self._monotonic()
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
        delivery = self._delivery
        if not delivery.due():
            self._spill_records(batch)
            return
        try:
            stored = delivery.store(batch, live=True, encoded=encoded)
        except Exception as exc:
            delivery.failed(exc)
            self._spill_records(batch)
            return
        delivery.answered()
        self._metrics.count("written", stored)

    def _replay_ready(self, now: float) -> bool:
        delivery = self._delivery
        return (
            not self._stopping
            and self._spill.backlog > 0
            and (delivery.healthy or now >= delivery.next_attempt)
            and len(self._buffer) < self.batch_size
        )

    def _maintain(self, stopping: bool) -> None:
        """Adopt orphaned spill files now and then, replay one chunk when the store is up."""
        now = self._monotonic()
        if not stopping:
            self._replay.adopt_if_due(now)
        if self._replay_ready(now):
            self._replay.replay_chunk()
        self._publish_spill_state()

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
        segments, self._overflow_segments = self._overflow_segments, []
        self._spill_records(records)
        self._settle_journal(segments)
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
        self._settle_journal(_segments_of(entries))
        with self._overflow_lock:
            self._late = True
            self._spill_overflow_locked()
        self._release_spill()
        self._publish_queued()

    def _release_spill(self) -> None:
        """Let go of every spill file: from now on other processes own (and count) them."""
        self._spill.release_all()
        self._metrics.spill_state(0, 0.0)
        if self._journal is not None and self._late:
            self._journal.close()

    def _settle_journal(self, segments: Sequence[tuple[Segment, int]]) -> None:
        if self._journal is not None and segments:
            self._journal.settle(segments)

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


def _segments_of(entries: Sequence[Entry]) -> list[tuple[Segment, int]]:
    """The journal segments of journaled entries (made by `submit_journaled`), record counts."""
    found = []
    for entry in entries:
        if type(entry) is tuple and entry[0] is PredictionLog._journaled:
            segment, answers = entry[1]
            if segment is not None:
                found.append((segment, sum(len(answer[0]) for answer in answers)))
    return found


def _filled(rows: list[Row], fill: Callable[..., None] | None, args: tuple[Any, ...]) -> list[Row]:
    """An answered request's rows, completed by `fill(rows, *args)`."""
    if fill is not None:
        fill(rows, *args)
    return rows
