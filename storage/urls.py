"""Store URLs as the user sees them: shown without the password, SQLite files looked up."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url


def shown_url(url: str) -> str:
    """`url` with its password masked, fit for messages."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file_exists(url: str) -> bool:
    """Whether a SQLite URL names a database file that exists (in-memory ones never do)."""
    database = make_url(url).database
    return bool(database) and database != ":memory:" and Path(str(database)).is_file()
