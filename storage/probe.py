"""Whether the store answers and holds the predictions table: the readiness probe's query."""

from __future__ import annotations

from sqlalchemy import Engine, text

from storage.engine import create_small_engine


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
        return create_small_engine(self._url, timeout_s=self._timeout_s)
