"""Engine factory: SQLite (WAL) by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine as Engine  # re-exported: other packages type with it, not SQL
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    if not isinstance(engine_or_url, str):
        return engine_or_url.dialect.name == "sqlite"  # no URL to parse: the writer asks per batch
    return make_url(engine_or_url).get_backend_name() == "sqlite"


def shown_url(url: str) -> str:
    """`url` as it may be printed: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other stores and in-memory SQLite)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return Path(database)


def sqlite_file_exists(url: str) -> bool:
    """Whether a SQLite URL names a database file that exists (in-memory ones never do)."""
    path = sqlite_file(url)
    return path is not None and path.is_file()


def table_names(engine: Engine) -> set[str]:
    """The tables of the store's current schema."""
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def missing_table(exc: DBAPIError) -> bool:
    """Whether the database refused a statement because a table does not exist (unmigrated)."""
    return "no such table" in str(exc.orig) or "UndefinedTable" in type(exc.orig).__name__


def create_store_engine(url: str, **kwargs: object) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout and their folder created."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def create_small_engine(url: str, *, timeout_s: float = 2.0) -> Engine:
    """An engine for a background check: one connection, and (PostgreSQL) a connect that gives
    up within `timeout_s`, so that a store outage never hangs the checker."""
    if is_sqlite(url):
        return create_store_engine(url)
    return create_store_engine(
        url, pool_size=1, max_overflow=0, connect_args={"connect_timeout": max(1, round(timeout_s))}
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
