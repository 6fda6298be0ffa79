"""A named lock across processes on one store, so that no window of a monitor runs twice at once.

PostgreSQL: a session advisory lock (released by the server if the process dies).
SQLite: an exclusive `flock` on a file beside the database (released by the kernel likewise);
in-memory SQLite databases live in one process, so a process-local lock is enough.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from storage.engine import is_sqlite

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


# PostgreSQL advisory locks are database-wide: the key pairs a servewatch namespace with the
# schema and the lock name, so stores in different schemas of one database do not collide.
NAMESPACE = int.from_bytes(hashlib.sha256(b"servewatch.monitor").digest()[:4], "big", signed=True)
_KEY = "hashtext(current_schema() || ':' || :name)"


@contextmanager
def monitor_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Try to take the lock named `name` without waiting; yields whether it was taken."""
    if not is_sqlite(engine):
        with _advisory_lock(engine, name) as acquired:
            yield acquired
        return
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        with _process_lock(f"{engine.url}:{name}") as acquired:
            yield acquired
        return
    with _file_lock(Path(f"{database}.locks") / f"{name}.lock") as acquired:
        yield acquired


@contextmanager
def _advisory_lock(engine: Engine, name: str) -> Iterator[bool]:
    params = {"ns": NAMESPACE, "name": name}
    with engine.connect() as connection:
        take = text(f"SELECT pg_try_advisory_lock(:ns, {_KEY})")
        acquired = bool(connection.execute(take, params).scalar())
        connection.commit()
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute(text(f"SELECT pg_advisory_unlock(:ns, {_KEY})"), params)
                connection.commit()


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def _process_lock(key: str) -> Iterator[bool]:
    with _local_guard:
        lock = _local_locks.setdefault(key, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()
