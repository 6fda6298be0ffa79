"""Models the tests build as the repo does, and one that learnt noise (a candidate to refuse)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from service.models.build import build_model
from service.models.datasets import Dataset, risk_dataset, ticket_dataset
from service.models.recipes import recipe

TICKETS = "ticket_classifier"
RISK = "risk_scorer"


def _shuffled(dataset: Dataset) -> Dataset:
    """`dataset` with its training labels shuffled (seeded): what a model learns is noise."""
    labels = list(dataset.train_labels)
    random.Random(4).shuffle(labels)
    return replace(dataset, train_labels=labels)


def shuffled_tickets() -> Dataset:
    """The ticket data (smaller) with its training labels shuffled."""
    return _shuffled(ticket_dataset(n=1500, reference_rows=500))


def shuffled_accounts() -> Dataset:
    """The risk data (smaller) with its training labels shuffled."""
    return _shuffled(risk_dataset(n=1500, reference_rows=500))


def build_noise_ticket_model(home: Path) -> Any:
    """A ticket classifier trained on shuffled labels, registered in `home`."""
    return build_model(replace(recipe(TICKETS), make_dataset=shuffled_tickets), home=home)


def build_noise_risk_model(home: Path) -> Any:
    """A risk scorer trained on shuffled labels, registered in `home`."""
    return build_model(replace(recipe(RISK), make_dataset=shuffled_accounts), home=home)
