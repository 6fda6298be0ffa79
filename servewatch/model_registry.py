"""The BentoML model store as the monitors' registry fallback, wired in by the composition root.

monitors may not import service; the root CLI hands them these lookups instead. Imports are
deferred so that starting the CLI stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import Settings
    from monitors.baselines import RegistryLookups


def registry_metadata(model_name: str, model_version: str) -> Mapping[str, Any] | None:
    """Metadata of a version in the BentoML model store (None if the registry lacks it)."""
    try:
        from service.models.registry import ModelNotFoundError, get_model
    except ImportError:  # BentoML is not installed: only the store's mirror is known
        return None
    try:
        return get_model(model_name, model_version).metadata
    except ModelNotFoundError:
        return None


def registry_has_model(model_name: str) -> bool:
    """Whether the BentoML model store holds a version of `model_name`."""
    try:
        from service.models.registry import list_models
    except ImportError:
        return False
    return bool(list_models(model_name))


def registry_versions(model_name: str | None) -> list[tuple[str, str]]:
    """(model, version) pairs in the BentoML model store, of `model_name` or of every model."""
    try:
        from service.models.registry import list_models
    except ImportError:
        return []
    return [(model.name, model.version) for model in list_models(model_name)]


def bentoml_lookups(settings: Settings) -> RegistryLookups:
    """Lookups in the BentoML store of `settings`; its home is set before bentoml is imported."""
    from core.config import use_bentoml_home
    from monitors.baselines import RegistryLookups

    def metadata(model_name: str, model_version: str) -> Mapping[str, Any] | None:
        use_bentoml_home(settings)
        return registry_metadata(model_name, model_version)

    def has_model(model_name: str) -> bool:
        use_bentoml_home(settings)
        return registry_has_model(model_name)

    def versions(model_name: str | None) -> list[tuple[str, str]]:
        use_bentoml_home(settings)
        return registry_versions(model_name)

    return RegistryLookups(metadata, has_model, versions)
