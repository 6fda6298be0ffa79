"""Scratch stores for tests and benches: a migrated PostgreSQL schema, dropped on exit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.engine import create_store_engine
from storage.migrate import upgrade


def with_search_path(url: str, schema: str) -> str:
    """`url` with `schema` as the only entry of PostgreSQL's search_path."""
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False)


@contextmanager
def scratch_schema(
    postgres_url: str, prefix: str = "scratch", revision: str = "head"
) -> Iterator[str]:
    """URL of a fresh schema migrated to `revision`; the schema is dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_store_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = with_search_path(postgres_url, schema)
        upgrade(url, revision)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
