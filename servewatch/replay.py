"""Replay: re-score stored inputs with a candidate version and with the versions that answered.

The stored rows come from the store (`storage.prediction_samples.stored_inputs`), the models
from the registry through the serving runtime (the same ONNX sessions and output-schema checks
the service uses), and the comparison and gates from `monitors.replay_compare`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from core.config import Settings
from core.contracts import ALL
from core.timeutil import iso_utc
from monitors.replay_compare import ITEM_COLUMNS, Comparison, GateVerdict, compare_by_tenant
from monitors.replay_compare import judge_gates as judge_replay_gates
from service.runtime import InputMismatch, ItemResult, LoadedModel, load_model
from storage.prediction_samples import RowScope, stored_inputs

DEFAULT_BATCH_SIZE = 32
# The failure recorded for a stored input a version cannot take (text given to a tabular model,
# a feature set that differs from the model's).
INPUT_MISMATCH = "input_mismatch"


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay: a model's rows in [since, until), optionally one tenant's, at most limit."""

    model_name: str
    candidate_version: str
    since: datetime
    until: datetime
    tenant: str | None = None
    limit: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


@dataclass(frozen=True)
class ReplayOutcome:
    """The comparisons (all items under `*`, then per tenant), the gates and what was skipped."""

    request: ReplayRequest
    answering_versions: dict[str, int]
    skipped: dict[str, int]
    comparisons: dict[str, Comparison]
    gates: list[GateVerdict]
    generated_at: datetime

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def replayed(self) -> int:
        return self.comparisons[ALL].n

    def as_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "model": r.model_name,
            "candidate_version": r.candidate_version,
            "window": {"since": iso_utc(r.since), "until": iso_utc(r.until)},
            "tenant": r.tenant,
            "limit": r.limit,
            "generated_at": iso_utc(self.generated_at),
            "replayed": self.replayed,
            "answering_versions": self.answering_versions,
            "skipped": self.skipped,
            "passed": self.passed,
            "gates": [gate.as_json() for gate in self.gates],
            "comparisons": {key: c.as_json() for key, c in self.comparisons.items()},
        }


class ModelLoader:
    """Loads each registered version once, with the settings' provider and thread counts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loaded: dict[tuple[str, str], LoadedModel] = {}

    def load(self, name: str, version: str) -> LoadedModel:
        """The version loaded (ModelNotFoundError when the registry lacks it)."""
        from service.models.registry import get_model

        key = (name, version)
        if key not in self._loaded:
            s = self._settings
            registered = get_model(name, version, home=s.bentoml_home)
            self._loaded[key] = load_model(
                registered,
                use_cuda=s.use_cuda,
                intra_op_threads=s.ort_intra_op_threads,
                inter_op_threads=s.ort_inter_op_threads,
            )
        return self._loaded[key]


def run_replay(
    engine: Engine, settings: Settings, request: ReplayRequest, now: datetime
) -> ReplayOutcome:
    """Replay the request's stored inputs and judge the configured gates."""
    from service.models.registry import ModelNotFoundError

    loader = ModelLoader(settings)
    candidate = loader.load(request.model_name, request.candidate_version)
    scope = RowScope(tenant=request.tenant)
    stored = stored_inputs(
        engine, request.model_name, request.since, request.until, scope, request.limit
    )
    rows = stored.rows
    skipped = {"without_inputs": stored.without_inputs, "answering_version_missing": 0}
    frames, classes = [], set(candidate.classes)
    for version, group in rows.groupby("model_version", sort=True):
        try:
            baseline = loader.load(request.model_name, str(version))
        except ModelNotFoundError:
            skipped["answering_version_missing"] += len(group)
            continue
        classes.update(baseline.classes)
        frames.append(score_items(baseline, candidate, group, request.batch_size))
    items = pd.concat(frames) if frames else pd.DataFrame(columns=list(ITEM_COLUMNS))
    monitors = settings.config.monitors
    comparisons = compare_by_tenant(items, sorted(classes), monitors.low_confidence_cutoff)
    gates = judge_replay_gates(comparisons[ALL], settings.config.replay.gates, monitors)
    answering = Counter(str(v) for v in rows["model_version"])
    return ReplayOutcome(request, dict(sorted(answering.items())), skipped, comparisons, gates, now)


def score_items(
    baseline: LoadedModel, candidate: LoadedModel, rows: pd.DataFrame, batch_size: int
) -> pd.DataFrame:
    """The items' scoring by both versions, in ITEM_COLUMNS."""
    values = [model_value(features) for features in rows["features"]]
    scored = {
        side: score(model, values, batch_size)
        for side, model in (("baseline", baseline), ("candidate", candidate))
    }
    frame = pd.DataFrame({"tenant": rows["tenant"].astype(str).to_numpy()})
    frame["stored_class"] = rows["predicted_class"].to_numpy()
    for side, results in scored.items():
        frame[f"{side}_class"] = [r.predicted_class for r, _ in results]
        frame[f"{side}_confidence"] = [r.confidence for r, _ in results]
        frame[f"{side}_failure"] = [r.failure for r, _ in results]
        frame[f"{side}_ms"] = [ms for _, ms in results]
    return frame[list(ITEM_COLUMNS)]


def model_value(features: dict[str, Any]) -> Any:
    """What a model takes from a stored input: a ticket's text, or a feature dict as it is."""
    if set(features) == {"text"}:
        return features["text"]
    return features


def score(
    model: LoadedModel, values: Sequence[Any], batch_size: int
) -> list[tuple[ItemResult, float]]:
    """Each value's result and its share of its batch's inference milliseconds."""
    prepared: list[Any] = []
    results: list[tuple[ItemResult, float] | None] = []
    for value in values:
        try:
            prepared.append(model.prepare(value))
            results.append(None)
        except (InputMismatch, TypeError, ValueError):
            results.append((ItemResult(None, None, None, INPUT_MISMATCH), 0.0))
    answers: list[tuple[ItemResult, float]] = []
    for start in range(0, len(prepared), batch_size):
        batch = model.predict(prepared[start : start + batch_size])
        share = batch.seconds * 1000.0 / max(batch.size, 1)
        answers.extend((item, share) for item in batch.items)
    answered = iter(answers)
    return [result if result is not None else next(answered) for result in results]
