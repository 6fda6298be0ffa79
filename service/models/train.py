"""Fit the scikit-learn pipelines of the two business models (deterministic solvers only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.models.datasets import Dataset

# Plain ASCII words of 2+ characters: the tokenizer skl2onnx emits (re2 `tokenexp`) matches
# exactly these, whereas the default `(?u)\b\w\w+\b` disagrees with it on 1-letter words.
TOKEN_PATTERN = r"[a-zA-Z0-9_]{2,}"

TICKET_HYPERPARAMETERS: Mapping[str, Any] = {
    "ngram_range": [1, 2],
    "min_df": 2,
    "token_pattern": TOKEN_PATTERN,
    # skl2onnx's sublinear (log) term frequency disagrees with scikit-learn's on repeated words.
    "sublinear_tf": False,
    "C": 5.0,
    "solver": "newton-cg",
    "max_iter": 1000,
}
RISK_HYPERPARAMETERS: Mapping[str, Any] = {
    "scaler": "standard",
    "C": 1.0,
    "solver": "lbfgs",
    "max_iter": 1000,
}


def fit_ticket_classifier(dataset: Dataset) -> Any:
    """TF-IDF over word uni- and bigrams, then multinomial logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    p = TICKET_HYPERPARAMETERS
    pipeline = Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=tuple(p["ngram_range"]),
                    min_df=p["min_df"],
                    token_pattern=p["token_pattern"],
                    sublinear_tf=p["sublinear_tf"],
                ),
            ),
            (
                "classifier",
                LogisticRegression(C=p["C"], solver=p["solver"], max_iter=p["max_iter"]),
            ),
        ]
    )
    return pipeline.fit(dataset.model_input(dataset.train_inputs), list(dataset.train_labels))


def fit_risk_scorer(dataset: Dataset) -> Any:
    """Standardized features, then multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    p = RISK_HYPERPARAMETERS
    pipeline = Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "classifier",
                LogisticRegression(C=p["C"], solver=p["solver"], max_iter=p["max_iter"]),
            ),
        ]
    )
    return pipeline.fit(dataset.model_input(dataset.train_inputs), list(dataset.train_labels))
