"""Whether the store answers and holds the predictions table: the readiness probe's query."""

from __future__ import annotations

from sqlalchemy import Engine, text

from storage.engine import create_store_engine, is_sqlite


class StoreProbe:
    """A callable check: None when the store answers and is migrated, else the reason."""

    def __init__(self, database_url: str, *, timeout_s: float = 2.0) -> None:
        self._url = database_url
        self._timeout_s = timeout_s
        self._engine: Engine | None = None

    def __call__(self) -> str | None:
        if self._engine is None:
            self._engine = self._create_engine()
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1 FROM predictions WHERE 1 = 0"))
        except Exception as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            return f"store does not answer: {reason}"
        return None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _create_engine(self) -> Engine:
        if is_sqlite(self._url):
            return create_store_engine(self._url)
        # One connection, and a connect that gives up in bounded time: a probe must not hang.
        return create_store_engine(
            self._url,
            pool_size=1,
            max_overflow=0,
            connect_args={"connect_timeout": max(1, round(self._timeout_s))},
        )
