"""What the store-backed commands (release, rollout) share: their --config and --database-url
options, the settings those make, and an engine disposed after the command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from core.config import Settings, load_settings
from storage.engine import Engine, create_store_engine

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config (default SERVEWATCH_CONFIG_FILE)")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="default SERVEWATCH_DATABASE_URL or var/")
]


def settings_for(config: Path | None, database_url: str | None) -> Settings:
    """The settings, with the command's --config and --database-url over the environment."""
    overrides: dict[str, Any] = {}
    if config is not None:
        overrides["config_file"] = config
    if database_url is not None:
        overrides["database_url"] = database_url
    return load_settings(**overrides)


@contextmanager
def store_engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the settings' store for one command, disposed after it."""
    engine = create_store_engine(settings.resolved_database_url)
    try:
        yield engine
    finally:
        engine.dispose()
