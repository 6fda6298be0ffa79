"""Mirror the model registry into the store's `model_versions` table (for SQL readers and monitors).

Rows are upserted, never deleted: predictions of a removed version keep their baseline. The
command line mirrors a whole model store; a worker mirrors the versions it serves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from service.models.registry import RegisteredModel, list_models
from storage.engine import Engine, create_small_engine
from storage.errors import StoreError
from storage.model_versions import upsert_model_versions

logger = logging.getLogger("servewatch.service")


def sync_model_versions(engine: Engine, *, home: Path | str | None = None) -> int:
    """Upsert one row per registered version; returns the number of versions mirrored."""
    return upsert_model_versions(engine, [version_row(model) for model in list_models(home=home)])


def version_row(model: RegisteredModel) -> dict[str, Any]:
    """The `model_versions` row of a registered version."""
    return {
        "model_name": model.name,
        "model_version": model.version,
        "created_at": model.created_at,
        "snapshot_id": model.metadata["snapshot_id"],
        "preprocessing_version": model.metadata["preprocessing_version"],
        "labels": model.labels,
        "metadata": model.metadata,
    }


class VersionMirror:
    """Registers the versions a worker serves in the store, from a thread of its own.

    A release's image holds its models, and the monitors (another container) read baselines
    from the store's mirror: each worker upserts what it loaded, retrying every `retry_s`
    while the store is down or not yet migrated, so it never delays serving.
    """

    def __init__(self, url: str, *, retry_s: float = 10.0) -> None:
        self._url = url
        self._retry_s = retry_s
        self._pending: list[RegisteredModel] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="servewatch-mirror", daemon=True)

    def add(self, models: Iterable[RegisteredModel]) -> None:
        """Mirror these versions (soon, and until the store takes them)."""
        with self._lock:
            self._pending.extend(models)
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def pending(self) -> int:
        """Versions not mirrored yet."""
        with self._lock:
            return len(self._pending)

    def _run(self) -> None:
        engine = create_small_engine(self._url)
        warned = False
        try:
            while not self._stopping.is_set():
                self._wake.wait(self._retry_s)
                self._wake.clear()
                with self._lock:
                    batch = list(self._pending)
                if not batch:
                    continue
                rows = {(m.name, m.version): version_row(m) for m in batch}  # one row per key
                try:
                    upsert_model_versions(engine, list(rows.values()))
                except StoreError as exc:
                    if not warned:
                        logger.warning("cannot mirror model versions yet (will retry): %s", exc)
                        warned = True
                    continue
                with self._lock:
                    self._pending = self._pending[len(batch) :]
        finally:
            engine.dispose()
