"""The model registry: versions of the business models in the BentoML model store.

Every call works on an explicit store folder: `home` when given, else `$BENTOML_HOME`, else the
settings' home (which `use_bentoml_home` then exports). BentoML's own global store is fixed at
first use in a process; passing the store explicitly lets one process (a test session, a tool)
use several homes safely.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.timeutil import to_utc
from service.models.artifact import check_artifact
from service.models.metadata import MetadataError, validate_metadata

logger = logging.getLogger("servewatch.models")

ONNX_FILENAME = "model.onnx"
# What BentoML accepts as a tag's name or version (it lowercases, we refuse instead).
_TAG_PART = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class RegisteredModel:
    """One version of a model in the store, with its validated metadata."""

    name: str
    version: str
    path: Path
    labels: dict[str, str]
    metadata: dict[str, Any]
    created_at: datetime

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILENAME

    @property
    def classes(self) -> list[str]:
        """The order of the probability columns."""
        return list(self.metadata["classes"])

    @property
    def baseline(self) -> dict[str, Any]:
        """Reference distributions on the validation set: the monitors' default baseline."""
        return dict(self.metadata["evaluation"]["reference"])


class ModelNotFoundError(LookupError):
    """No such model, or no such version of it, in the store."""


def resolve_home(home: Path | str | None = None) -> Path:
    """The BentoML home to use: `home`, else $BENTOML_HOME, else the settings' one (exported)."""
    if home is not None:
        return Path(home).resolve()
    if os.environ.get("BENTOML_HOME"):
        return Path(os.environ["BENTOML_HOME"]).resolve()
    from core.config import load_settings, use_bentoml_home

    return use_bentoml_home(load_settings())


def get_model(
    name: str, version: str = "latest", *, home: Path | str | None = None
) -> RegisteredModel:
    """The version `version` (exact, or `latest`) of model `name`."""
    from bentoml.exceptions import InvalidArgument, NotFound

    if not valid_tag_part(name) or not valid_tag_part(version):
        raise ModelNotFoundError(f"{name}:{version} is not a valid model name and version")
    models_dir = _models_dir(home)
    if not (models_dir / name).is_dir():
        raise ModelNotFoundError(f"model {name!r} is not registered in {models_dir}")
    # BentoML resolves version prefixes too; the registry answers exact versions only.
    if version != "latest" and not has_version(name, version, home=home):
        raise ModelNotFoundError(f"model {name!r} has no version {version!r}")
    try:
        item = _store(models_dir).get(f"{name}:{version}")
    except (NotFound, InvalidArgument) as exc:
        raise ModelNotFoundError(f"model {name}:{version} is not registered: {exc}") from exc
    return _registered(item)


def list_models(
    name: str | None = None, *, home: Path | str | None = None
) -> list[RegisteredModel]:
    """Registered versions (of `name`, or of every model), newest first per name.

    Versions whose metadata fails validation cannot be served and are left out (logged).
    """
    from bentoml.exceptions import InvalidArgument, NotFound

    models_dir = _models_dir(home)
    if not models_dir.is_dir() or (name is not None and not valid_tag_part(name)):
        return []
    try:
        items = _store(models_dir).list(name)
    except (NotFound, InvalidArgument):
        return []
    models = []
    for item in items:
        try:
            models.append(_registered(item))
        except MetadataError as exc:
            logger.warning("skipping %s: %s", item.tag, exc)
    return sorted(models, key=lambda m: (m.name, -m.created_at.timestamp(), m.version))


def has_version(name: str, version: str, *, home: Path | str | None = None) -> bool:
    """Whether `name` has `version` in the store (valid or not)."""
    if not valid_tag_part(name) or not valid_tag_part(version):
        return False
    return (_models_dir(home) / name / version / "model.yaml").is_file()


def register_model(
    name: str,
    version: str,
    onnx_model: bytes,
    *,
    labels: Mapping[str, str],
    metadata: Mapping[str, Any],
    home: Path | str | None = None,
    replace: bool = False,
) -> RegisteredModel:
    """Save `onnx_model` as `name:version`; refused when its metadata is incomplete
    (MetadataError) or when the artifact does not load or fails its sample (ArtifactError)."""
    import bentoml

    if not valid_tag_part(name) or not valid_tag_part(version) or version == "latest":
        raise ValueError(f"{name}:{version} is not a valid model name and version")
    checked = validate_metadata(metadata, subject=f"{name}:{version}")
    check_artifact(name, version, onnx_model, checked)
    models_dir = _models_dir(home)
    models_dir.mkdir(parents=True, exist_ok=True)
    store = _store(models_dir)
    if has_version(name, version, home=home):
        if not replace:
            raise FileExistsError(f"{name}:{version} is already registered")
        store.delete(f"{name}:{version}")
    with bentoml.models.create(
        f"{name}:{version}",
        labels={str(k): str(v) for k, v in labels.items()},
        metadata=checked,
        _model_store=store,
    ) as model:
        Path(model.path, ONNX_FILENAME).write_bytes(onnx_model)
    return get_model(name, version, home=home)


def valid_tag_part(value: str) -> bool:
    """Whether `value` can be a model name or version in the store as it is."""
    return bool(_TAG_PART.fullmatch(value))


def _models_dir(home: Path | str | None) -> Path:
    return resolve_home(home) / "models"


def _store(models_dir: Path) -> Any:
    """A BentoML model store on `models_dir` (BentoML's API takes it as `_model_store`)."""
    from bentoml._internal.models import ModelStore

    return ModelStore(str(models_dir))


def _registered(item: Any) -> RegisteredModel:
    tag = item.tag
    metadata = validate_metadata(item.info.metadata, subject=str(tag))
    return RegisteredModel(
        name=str(tag.name),
        version=str(tag.version),
        path=Path(item.path),
        labels={str(k): str(v) for k, v in item.info.labels.items()},
        metadata=metadata,
        created_at=to_utc(item.creation_time),
    )
