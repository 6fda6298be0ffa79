"""Reference distributions of registered model versions: the monitors' default baseline.

A model version's evaluation report holds the validation set's confidence histogram, deciles
and class counts. They are read from the store's `model_versions` mirror of the model
registry (cheap, works from any cron host) and else from the BentoML model store itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select

from monitors.histograms import ConfidenceHistogram, baseline_anchors, normalize_edges
from storage.schema import model_versions


class BaselineError(ValueError):
    """A model version's reference distributions are missing or malformed."""


@dataclass(frozen=True)
class Baseline:
    """What a model version predicted on its validation set."""

    model_name: str
    model_version: str
    confidence: ConfidenceHistogram
    quantile_edges: NDArray[np.float64]
    class_counts: Mapping[str, float]
    classes: tuple[str, ...] = ()
    source: str = "baseline"

    @classmethod
    def from_metadata(
        cls, model_name: str, model_version: str, metadata: Mapping[str, Any]
    ) -> Baseline:
        """Parse a registered model's metadata (its `evaluation.reference` and `classes`)."""
        try:
            reference = metadata["evaluation"]["reference"]
        except (KeyError, TypeError) as exc:
            raise BaselineError(
                f"{model_name} {model_version}: metadata has no evaluation.reference"
            ) from exc
        classes = tuple(str(c) for c in metadata.get("classes") or ())
        return cls.from_reference(model_name, model_version, reference, classes)

    @classmethod
    def from_reference(
        cls,
        model_name: str,
        model_version: str,
        reference: Mapping[str, Any],
        classes: tuple[str, ...] = (),
    ) -> Baseline:
        """Parse an `evaluation.reference` mapping, refusing inconsistent ones."""
        where = f"{model_name} {model_version} baseline"
        try:
            histogram = reference["confidence_histogram"]
            quantiles = [float(q) for q in reference["confidence_quantile_edges"]]
            confidence = ConfidenceHistogram.from_counts(
                histogram["edges"], histogram["counts"], baseline_anchors(quantiles)
            )
            class_counts = {str(k): float(v) for k, v in reference["class_counts"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{where}: malformed reference ({exc})") from exc
        if any(b < a for a, b in zip(quantiles, quantiles[1:], strict=False)):
            raise BaselineError(f"{where}: confidence_quantile_edges are not sorted")
        if confidence.n <= 0 or sum(class_counts.values()) <= 0:
            raise BaselineError(f"{where}: empty reference distributions")
        return cls(
            model_name,
            model_version,
            confidence,
            normalize_edges(quantiles),
            class_counts,
            classes or tuple(sorted(class_counts)),
        )


RegistryLookup = Callable[[str, str], Mapping[str, Any] | None]


def registry_metadata(model_name: str, model_version: str) -> Mapping[str, Any] | None:
    """Metadata of a version in the BentoML model store (None if the registry lacks it)."""
    try:
        from service.models.registry import ModelNotFoundError, get_model
    except ImportError:
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


@dataclass
class BaselineStore:
    """Baselines by (model, version), cached once found; why one is unavailable is kept."""

    engine: Engine
    registry: RegistryLookup | None = registry_metadata
    _cache: dict[tuple[str, str], Baseline] = field(default_factory=dict)
    problems: dict[tuple[str, str], str] = field(default_factory=dict)

    def get(self, model_name: str, model_version: str) -> Baseline | None:
        key = (model_name, model_version)
        if key not in self._cache:
            baseline = self._load(model_name, model_version)
            if baseline is None:
                return None  # not cached: a long-running scheduler sees it once registered
            self._cache[key] = baseline
        return self._cache[key]

    def _load(self, model_name: str, model_version: str) -> Baseline | None:
        metadata = self._stored_metadata(model_name, model_version)
        if metadata is None and self.registry is not None:
            metadata = self.registry(model_name, model_version)
        if metadata is None:
            self.problems[(model_name, model_version)] = "version not registered"
            return None
        try:
            return Baseline.from_metadata(model_name, model_version, metadata)
        except BaselineError as exc:
            self.problems[(model_name, model_version)] = str(exc)
            return None

    def _stored_metadata(self, model_name: str, model_version: str) -> Mapping[str, Any] | None:
        c = model_versions.c
        statement = select(c.metadata).where(
            c.model_name == model_name, c.model_version == model_version
        )
        with self.engine.connect() as connection:
            value = connection.execute(statement).scalar_one_or_none()
        return value if isinstance(value, Mapping) else None

    def registered_versions(self, model_name: str | None = None) -> list[tuple[str, str]]:
        """(model, version) pairs in the store's registry mirror."""
        c = model_versions.c
        statement = select(c.model_name, c.model_version).order_by(c.model_name, c.model_version)
        if model_name is not None:
            statement = statement.where(c.model_name == model_name)
        with self.engine.connect() as connection:
            return [(str(m), str(v)) for m, v in connection.execute(statement).all()]

    def is_registered(self, model_name: str) -> bool:
        """Whether the store's registry mirror or the model registry knows `model_name`."""
        c = model_versions.c
        statement = select(c.model_name).where(c.model_name == model_name).limit(1)
        with self.engine.connect() as connection:
            if connection.execute(statement).first() is not None:
                return True
        return self.registry is not None and registry_has_model(model_name)
