"""Spill files: prediction records parked on local disk while the store cannot take them.

A spill file is append-only JSON lines, one record per line, fsynced once per appended batch,
named `spill-<pid>-<uuid>.jsonl` so that every worker process writes its own files. Ownership
is an exclusive `flock` on the open file: the writing process holds it for the file's life, and
any process may claim (adopt) a file whose lock is free, which happens only once its writer has
closed it or died. The kernel drops the locks of a dead process, so leftovers of crashed workers
need no clean-up step, and two processes can never replay the same file at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.contracts import PREDICTION_COLUMNS, PUBLIC_PREDICTION_COLUMNS
from core.timeutil import epoch

SPILL_PREFIX = "spill-"
JOURNAL_PREFIX = "journal-"  # the prediction log's write-ahead segments (service/log_journal.py)
REJECTED_PREFIX = "rejected-"
SUFFIX = ".jsonl"
MAX_FILE_BYTES = 64 * 1024 * 1024
_READ_BLOCK = 256 * 1024
# Rows begin with the public columns; extras are only ever appended (core.contracts).
_OLDEST_WIDTH = len(PUBLIC_PREDICTION_COLUMNS)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    # Better a string in the store than a record lost for want of an encoder.
    return str(value)


def encode_records(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Records as JSON lines (datetimes as ISO 8601), each line ending in a newline."""
    lines = [json.dumps(record, default=_json_default, separators=(",", ":")) for record in records]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def decode_line(line: bytes) -> dict[str, Any] | None:
    """One spilled record (a JSON object, or a journal's array in `PREDICTION_COLUMNS` order),
    or None for a line that is neither (torn or corrupt)."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return _record_of(value)


def _record_of(value: Any) -> dict[str, Any] | None:
    # A shorter array is a journal written before extra columns were appended to the row.
    if isinstance(value, list) and _OLDEST_WIDTH <= len(value) <= len(PREDICTION_COLUMNS):
        return dict(zip(PREDICTION_COLUMNS, value, strict=False))
    return value if isinstance(value, dict) else None


def decode_lines(lines: list[bytes]) -> tuple[list[dict[str, Any]], int]:
    """Records of complete lines, and how many lines were not records."""
    try:  # one parse for the whole chunk is much cheaper than one per line
        values = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(lines):
        decoded = [decode_line(line) for line in lines]
    else:
        decoded = [_record_of(value) for value in values]
    records = [record for record in decoded if record is not None]
    return records, len(decoded) - len(records)


def record_time(record: Mapping[str, Any]) -> float | None:
    """Unix time of a record's `ts` (naive values are UTC), or None when it has none."""
    ts = record.get("ts")
    try:
        moment = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    except ValueError:
        return None
    if not isinstance(moment, datetime):
        return None
    return epoch(moment)


@dataclass
class Chunk:
    """Records read from a spill file, and where the next read starts."""

    records: list[dict[str, Any]]
    end: int
    bad_lines: int = 0

    @property
    def lines(self) -> int:
        return len(self.records) + self.bad_lines


class LockedFile:
    """A file this process holds open (`fd`) with an exclusive `flock` on it."""

    path: Path
    fd: int

    def discard(self) -> None:
        """Delete the file and drop its lock."""
        # A file that cannot be deleted is replayed again later: harmless, writes are idempotent.
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        """Close the file and drop its lock; the file stays for another process to claim."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


@dataclass
class SpillFile(LockedFile):
    """A spill file this process holds the lock of: one it writes, or one it adopted."""

    path: Path
    fd: int
    pending: int = 0  # complete lines not replayed yet
    offset: int = 0  # replay cursor: bytes already replayed
    size: int = 0
    oldest: float | None = None  # unix time of the first pending record
    sealed: bool = False

    @classmethod
    def create(cls, directory: Path) -> SpillFile:
        """A new, locked, empty spill file owned by this process."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{SPILL_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _fsync_directory(directory)
        return cls(path, fd)

    @classmethod
    def claim(cls, path: Path) -> SpillFile | None:
        """Lock a file no live process holds (a spill file, or the journal segment of a process
        that died); None if it is held or already gone."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # Whoever held the lock before may have replayed and unlinked the file meanwhile.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            return None
        held = os.fstat(fd)
        if (current.st_ino, current.st_dev) != (held.st_ino, held.st_dev):
            os.close(fd)
            return None
        claimed = cls(path, fd, size=held.st_size, sealed=True)
        try:
            claimed._count_lines()
        except OSError:
            claimed.release()
            raise
        return claimed

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append records as one write and fsync; on failure the file is left as it was."""
        data = encode_records(records)
        start = self.size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            os.fsync(self.fd)
        except OSError:
            self._truncate_to(start)
            raise
        self.size = start + len(data)
        if self.pending == 0:
            self.oldest = record_time(records[0])
        self.pending += len(records)

    def read_chunk(self, max_records: int, block: int = _READ_BLOCK) -> Chunk:
        """Up to `max_records` lines after the replay cursor; a torn last line counts as bad."""
        lines: list[bytes] = []
        torn = 0
        position = self.offset
        while len(lines) < max_records and position < self.size:
            data = os.pread(self.fd, min(block, self.size - position), position)
            if not data:
                break
            last_newline = data.rfind(b"\n")
            if last_newline < 0:
                if position + len(data) >= self.size:
                    torn = 1  # no newline before the end: a line torn by a crash mid-write
                    position = self.size
                    break
                block *= 2  # a line longer than the block: read more at once
                continue
            for line in data[:last_newline].split(b"\n"):
                if len(lines) >= max_records:
                    break
                position += len(line) + 1
                if line.strip():
                    lines.append(line)
        records, bad = decode_lines(lines)
        return Chunk(records, position, bad + torn)

    def advance(self, chunk: Chunk) -> None:
        """Move the replay cursor past `chunk` (its records are in the store now)."""
        # No progress means the file is shorter than it was: nothing more to read.
        self.offset = chunk.end if chunk.end > self.offset else self.size
        self.pending = max(self.pending - chunk.lines, 0)
        if self.offset >= self.size:
            self.pending = 0
        self.oldest = self._peek_oldest() if self.pending else None

    @property
    def done(self) -> bool:
        return self.sealed and self.offset >= self.size

    def _count_lines(self) -> None:
        pending = 0
        position = 0
        while position < self.size:
            data = os.pread(self.fd, min(_READ_BLOCK * 4, self.size - position), position)
            if not data:
                break
            pending += data.count(b"\n")
            position += len(data)
        if self.size and os.pread(self.fd, 1, self.size - 1) != b"\n":
            pending += 1  # the torn tail is replayed (and counted as dropped) like a line
        self.pending = pending
        self.oldest = self._peek_oldest()

    def _peek_oldest(self) -> float | None:
        chunk = self.read_chunk(1, block=4096)
        return record_time(chunk.records[0]) if chunk.records else None

    def _truncate_to(self, size: int) -> None:
        try:
            os.ftruncate(self.fd, size)
        except OSError:
            # The file now ends in a partial line: stop appending so it stays the last one.
            self.sealed = True


class SpillDirectory:
    """The spill files this process holds in one directory: the one it appends to, the ones
    it sealed, and the ones it adopted from processes that closed or died. Thread-safe."""

    def __init__(self, directory: Path, *, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.directory = Path(directory)
        self.max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._files: list[SpillFile] = []
        self._active: SpillFile | None = None

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write records durably to this process's active spill file (raises OSError)."""
        if not records:
            return
        with self._lock:
            active = self._active
            if active is None or active.sealed or active.size >= self.max_file_bytes:
                if active is not None:
                    active.sealed = True
                active = SpillFile.create(self.directory)
                self._files.append(active)
                self._active = active
            active.append(records)

    def adopt_orphans(self) -> int:
        """Claim spill files no live process holds; returns the records they carry."""
        try:
            candidates = sorted(
                path
                for prefix in (SPILL_PREFIX, JOURNAL_PREFIX)
                for path in self.directory.glob(f"{prefix}*{SUFFIX}")
            )
        except OSError:
            return 0
        with self._lock:
            held = {f.path for f in self._files}
        adopted = 0
        for path in candidates:
            if path in held:
                continue
            try:
                claimed = SpillFile.claim(path)
            except OSError:
                continue  # unreadable now; tried again at the next adoption
            if claimed is None:
                continue
            with self._lock:
                self._files.append(claimed)
            adopted += claimed.pending
        return adopted

    def next_chunk(self, max_records: int) -> tuple[SpillFile, Chunk] | None:
        """The next records to replay (sealing the active file if it is all that is left)."""
        with self._lock:
            self._discard_done()
            candidates = [f for f in self._files if f.sealed] or self._files
            if not candidates:
                return None
            spill = candidates[0]
            if spill is self._active:
                spill.sealed = True
                self._active = None
        try:
            return spill, spill.read_chunk(max_records)
        except OSError:
            self.forget(spill)
            raise

    def commit(self, spill: SpillFile, chunk: Chunk) -> None:
        """Record that `chunk` reached the store; delete its file once fully replayed."""
        with self._lock:
            spill.advance(chunk)
            self._discard_done()

    def forget(self, spill: SpillFile) -> None:
        """Let go of a file this process cannot read (it stays on disk for a later claim)."""
        with self._lock:
            if spill in self._files:
                self._files.remove(spill)
            if spill is self._active:
                self._active = None
            spill.release()

    @property
    def backlog(self) -> int:
        """Records held in this process's spill files, not replayed yet."""
        with self._lock:
            return sum(f.pending for f in self._files)

    @property
    def oldest(self) -> float | None:
        """Unix time of the oldest pending record in this process's spill files."""
        with self._lock:
            times = [f.oldest for f in self._files if f.pending and f.oldest is not None]
        return min(times) if times else None

    def release_all(self) -> None:
        """Close every held file (keeping those not fully replayed for another process)."""
        with self._lock:
            self._discard_done()
            for spill in self._files:
                if spill.size == 0:
                    spill.discard()
                else:
                    spill.release()
            self._files.clear()
            self._active = None

    def _discard_done(self) -> None:
        for spill in [f for f in self._files if f.done]:
            spill.discard()
            self._files.remove(spill)


def append_rejected(directory: Path, records: Sequence[Mapping[str, Any]], reason: str) -> Path:
    """Keep records the store refuses (bad data) in a file that is never replayed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{REJECTED_PREFIX}{os.getpid()}{SUFFIX}"
    data = encode_records({"reason": reason, "record": dict(r)} for r in records)
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
