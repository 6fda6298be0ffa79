"""Shared fixtures: a fresh, migrated store on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storage.engine import create_store_engine
from storage.migrate import upgrade
from tests.support.scratch import scratch_schema

POSTGRES_URL = os.environ.get(
    "SERVEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require(condition: bool, why: str) -> None:
    """Skip when a real dependency is missing; under CI a missing dependency is a failure."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: a missing dependency fails instead of skipping)")
    pytest.skip(why)


def _postgres_available() -> bool:
    engine = create_store_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def spark_available() -> bool:
    """Whether PySpark imports and a Java runtime is there for its local mode."""
    java_home = os.environ.get("JAVA_HOME")
    has_java = shutil.which("java") is not None or (
        java_home is not None and (Path(java_home) / "bin" / "java").exists()
    )
    return has_java and importlib.util.find_spec("pyspark") is not None


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    return _postgres_available()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database migrated to head (PostgreSQL: a schema of its own per test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade(url)
        yield url
        return
    require(request.getfixturevalue("postgres_available"), "PostgreSQL is not reachable")
    with scratch_schema(POSTGRES_URL, prefix="t") as url:
        yield url


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()
