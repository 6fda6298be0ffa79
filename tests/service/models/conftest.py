"""Model fixtures: both models trained once per session, registered in a temporary store.

The store is passed explicitly (`home=`) to the registry, so no test depends on BENTOML_HOME or
on which home BentoML's global store was fixed to at first use in this process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.models.build import Candidate, train_candidate
from service.models.recipes import RECIPES
from service.models.registry import RegisteredModel, register_model


@pytest.fixture(scope="session")
def candidates() -> dict[str, Candidate]:
    """Both models trained, exported to ONNX and parity-checked."""
    return {name: train_candidate(recipe) for name, recipe in RECIPES.items()}


@pytest.fixture(scope="session")
def session_models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-store") / "bentoml"


@pytest.fixture(scope="session")
def registered(
    candidates: dict[str, Candidate], session_models_home: Path
) -> dict[str, RegisteredModel]:
    """The session's candidates registered in `session_models_home` (tests must not change it)."""
    return {
        name: register_model(
            name,
            c.version,
            c.artifact.model,
            labels=c.labels,
            metadata=c.metadata,
            home=session_models_home,
        )
        for name, c in candidates.items()
    }


@pytest.fixture
def models_home(
    registered: dict[str, RegisteredModel], session_models_home: Path, tmp_path: Path
) -> Path:
    """A private copy of the session's store, for tests that change it."""
    home = tmp_path / "bentoml"
    shutil.copytree(session_models_home, home)
    return home
