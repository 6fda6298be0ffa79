"""Reference distributions of registered model versions: the monitors' default baseline.

A model version's evaluation report holds the validation set's confidence histogram, deciles
and class counts. They are read from the store's `model_versions` mirror of the model
registry (cheap, works from any cron host) and else, when the composition root passes the
lookups in (servewatch.model_registry), from the BentoML model store itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitors.histograms import ConfidenceHistogram, baseline_anchors, normalize_edges
from storage.engine import Engine
from storage.model_versions import is_mirrored, mirrored_versions, version_metadata


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
        if any(b < a for a, b in itertools.pairwise(quantiles)):
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


# A model registry beyond the store's mirror: a version's metadata (None if it lacks it), and
# whether it holds any version of a model.
RegistryLookup = Callable[[str, str], Mapping[str, Any] | None]
RegistryHasModel = Callable[[str], bool]
# The (model, version) pairs a model registry holds, of one model or (None) of every model.
RegistryVersions = Callable[[str | None], list[tuple[str, str]]]


@dataclass(frozen=True)
class RegistryLookups:
    """A model registry beyond the store's mirror, passed in by the composition root."""

    metadata: RegistryLookup
    has_model: RegistryHasModel
    versions: RegistryVersions | None = None


# (model, version, tenant) with the first successful prediction's time, and a completed
# production reference by (model, version, tenant or "*", period start, period end).
ServingKey = tuple[str, str, str]
PeriodKey = tuple[str, str, str, datetime, datetime]


@dataclass
class ProductionCache:
    """What production references need across runs: when each key started serving (read
    incrementally up to `scanned_until`) and the references of periods that have ended."""

    starts: dict[ServingKey, datetime] = field(default_factory=dict)
    scanned_until: datetime | None = None
    references: dict[PeriodKey, Baseline] = field(default_factory=dict)


@dataclass
class BaselineStore:
    """Baselines by (model, version), cached once found; why one is unavailable is kept.

    It also keeps the production references' cache, so a long-running scheduler reads each
    key's first hours once.
    """

    engine: Engine
    registry: RegistryLookup | None = None  # no fallback beyond the mirror unless passed in
    registry_has_model: RegistryHasModel | None = None
    registry_versions: RegistryVersions | None = None
    _cache: dict[tuple[str, str], Baseline] = field(default_factory=dict)
    problems: dict[tuple[str, str], str] = field(default_factory=dict)
    production: ProductionCache = field(default_factory=ProductionCache)

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
        return version_metadata(self.engine, model_name, model_version)

    def registered_versions(self, model_name: str | None = None) -> list[tuple[str, str]]:
        """(model, version) pairs in the store's registry mirror and the registry passed in."""
        versions = set(mirrored_versions(self.engine, model_name))
        if self.registry_versions is not None:
            versions.update(self.registry_versions(model_name))
        return sorted(versions)

    def is_registered(self, model_name: str) -> bool:
        """Whether the store's registry mirror or the model registry knows `model_name`."""
        if is_mirrored(self.engine, model_name):
            return True
        return self.registry_has_model is not None and self.registry_has_model(model_name)
