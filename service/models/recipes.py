"""What each business model is built from: its dataset, pipeline and preprocessing version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from service.models.datasets import Dataset, risk_dataset, ticket_dataset
from service.models.train import (
    RISK_HYPERPARAMETERS,
    TICKET_HYPERPARAMETERS,
    fit_risk_scorer,
    fit_ticket_classifier,
)


@dataclass(frozen=True)
class ModelRecipe:
    """How to build one model. Bump `preprocessing_version` when the feature pipeline changes."""

    name: str
    task: str
    preprocessing_version: str
    make_dataset: Callable[..., Dataset]  # called with no argument, or a `seed` (reseeded)
    fit: Callable[[Dataset], Any]
    hyperparameters: Mapping[str, Any]


RECIPES: Mapping[str, ModelRecipe] = {
    "ticket_classifier": ModelRecipe(
        name="ticket_classifier",
        task="ticket-classification",
        preprocessing_version="tfidf-word-1-2.v1",
        make_dataset=ticket_dataset,
        fit=fit_ticket_classifier,
        hyperparameters=TICKET_HYPERPARAMETERS,
    ),
    "risk_scorer": ModelRecipe(
        name="risk_scorer",
        task="risk-scoring",
        preprocessing_version="standard-scaler.v1",
        make_dataset=risk_dataset,
        fit=fit_risk_scorer,
        hyperparameters=RISK_HYPERPARAMETERS,
    ),
}


def reseeded(model_recipe: ModelRecipe, seed: int) -> ModelRecipe:
    """The recipe trained on another draw of its generated data: a retrained candidate (its
    version differs, as its training data does)."""
    return replace(model_recipe, make_dataset=partial(model_recipe.make_dataset, seed=seed))


def recipe(name: str) -> ModelRecipe:
    """The recipe of model `name` (ValueError naming the known ones otherwise)."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(RECIPES)}") from None
