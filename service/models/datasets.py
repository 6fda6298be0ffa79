"""Training datasets: generated rows, a deterministic hold-out split, a content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from service.models.risk_data import FEATURES, generate_accounts
from service.models.ticket_corpus import generate_corpus

InputKind = Literal["text", "tabular"]

TICKET_ROWS = 5000
TICKET_SEED = 20_241_101
RISK_ROWS = 6000
RISK_SEED = 20_241_102
# Every 5th row is held out: rows are drawn i.i.d., so this is a random 20 % split that needs no
# second generator and never changes when unrelated code draws more random numbers.
VALIDATION_EVERY = 5
# The drift baseline is the model's predictions on this many more held-out rows, drawn by the
# same generator with the dataset's seed plus REFERENCE_SEED_OFFSET: a 1,000-row validation
# set alone is too small a reference (docs/monitors.md, "How a verdict is reached").
REFERENCE_ROWS = 10_000
REFERENCE_SEED_OFFSET = 7_919


@dataclass(frozen=True)
class Dataset:
    """Rows of one model's training data, split into train and validation."""

    kind: InputKind
    train_inputs: Sequence[Any]
    train_labels: Sequence[str]
    validation_inputs: Sequence[Any]
    validation_labels: Sequence[str]
    features: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    # Held-out rows the drift baseline is predicted on (never trained or evaluated on).
    reference_inputs: Sequence[Any] = ()

    @cached_property
    def snapshot_id(self) -> str:
        """sha256 of the schema and every row with its split: same data, same id."""
        digest = hashlib.sha256()
        header = {"kind": self.kind, "features": list(self.features)}
        digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
        splits = (
            ("train", self.train_inputs, self.train_labels),
            ("validation", self.validation_inputs, self.validation_labels),
        )
        for split, inputs, labels in splits:
            for value, label in zip(inputs, labels, strict=True):
                digest.update(json.dumps([split, value, label]).encode() + b"\n")
        for value in self.reference_inputs:
            digest.update(json.dumps(["reference", value]).encode() + b"\n")
        return digest.hexdigest()

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.train_labels))

    def model_input(self, inputs: Sequence[Any]) -> Any:
        """What scikit-learn takes: a list of texts, or a float32 matrix in feature order."""
        if self.kind == "text":
            return list(inputs)
        return np.asarray(inputs, dtype=np.float32).reshape(-1, len(self.features))

    def onnx_input(self, inputs: Sequence[Any]) -> np.ndarray:
        """What the ONNX model takes: a [N, 1] string tensor, or a float32 [N, n_features] one."""
        if self.kind == "text":
            return np.asarray(list(inputs), dtype=object).reshape(-1, 1)
        return np.asarray(self.model_input(inputs), dtype=np.float32)


def ticket_dataset(
    n: int = TICKET_ROWS, seed: int = TICKET_SEED, reference_rows: int = REFERENCE_ROWS
) -> Dataset:
    """The ticket classifier's data: generated support tickets and their categories."""
    tickets = generate_corpus(n, seed)
    train, validation = split_rows([(t.text, t.category) for t in tickets])
    reference_seed = seed + REFERENCE_SEED_OFFSET
    return Dataset(
        kind="text",
        train_inputs=[text for text, _ in train],
        train_labels=[label for _, label in train],
        validation_inputs=[text for text, _ in validation],
        validation_labels=[label for _, label in validation],
        source=_source("service.models.ticket_corpus", n, seed, reference_rows, reference_seed),
        reference_inputs=[t.text for t in generate_corpus(reference_rows, reference_seed)],
    )


def risk_dataset(
    n: int = RISK_ROWS, seed: int = RISK_SEED, reference_rows: int = REFERENCE_ROWS
) -> Dataset:
    """The risk scorer's data: generated accounts, features in FEATURES order."""
    accounts = generate_accounts(n, seed)
    rows = [([a.features[name] for name in FEATURES], a.risk) for a in accounts]
    train, validation = split_rows(rows)
    reference_seed = seed + REFERENCE_SEED_OFFSET
    reference = generate_accounts(reference_rows, reference_seed)
    return Dataset(
        kind="tabular",
        features=FEATURES,
        train_inputs=[values for values, _ in train],
        train_labels=[label for _, label in train],
        validation_inputs=[values for values, _ in validation],
        validation_labels=[label for _, label in validation],
        source=_source("service.models.risk_data", n, seed, reference_rows, reference_seed),
        reference_inputs=[[a.features[name] for name in FEATURES] for a in reference],
    )


def _source(
    generator: str, rows: int, seed: int, reference_rows: int, reference_seed: int
) -> dict[str, Any]:
    return {
        "generator": generator,
        "rows": rows,
        "seed": seed,
        "reference_rows": reference_rows,
        "reference_seed": reference_seed,
    }


def split_rows(rows: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(train, validation): every VALIDATION_EVERY-th row is held out."""
    train = [row for i, row in enumerate(rows) if i % VALIDATION_EVERY != VALIDATION_EVERY - 1]
    validation = [row for i, row in enumerate(rows) if i % VALIDATION_EVERY == VALIDATION_EVERY - 1]
    return train, validation
