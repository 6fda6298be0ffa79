"""Generated accounts for the risk scorer: deterministic, plausible and sensibly labelled."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter

from service.models.datasets import VALIDATION_EVERY, risk_dataset
from service.models.risk_data import (
    FEATURES,
    RISK_CLASSES,
    generate_accounts,
    latent_risk,
    risk_features,
)


def test_the_same_seed_gives_the_same_accounts_and_snapshot_id():
    assert generate_accounts(200, seed=3) == generate_accounts(200, seed=3)
    assert generate_accounts(200, seed=3) != generate_accounts(200, seed=4)
    assert risk_dataset(500, seed=3).snapshot_id == risk_dataset(500, seed=3).snapshot_id
    assert risk_dataset(500, seed=3).snapshot_id != risk_dataset(500, seed=4).snapshot_id


def test_the_reference_rows_are_a_separate_draw_that_the_snapshot_id_covers():
    dataset = risk_dataset(500, seed=3, reference_rows=300)
    assert len(dataset.reference_inputs) == dataset.source["reference_rows"] == 300
    assert dataset.reference_inputs[0] not in dataset.validation_inputs
    other = risk_dataset(500, seed=3, reference_rows=301)
    assert other.snapshot_id != dataset.snapshot_id
    assert other.validation_inputs == dataset.validation_inputs


def test_accounts_have_every_feature_and_all_classes_in_plausible_shares():
    accounts = generate_accounts(5000, seed=8)
    assert all(tuple(a.features) == FEATURES for a in accounts)
    assert all(math.isfinite(v) and v >= 0 for a in accounts for v in a.features.values())
    shares = {k: v / len(accounts) for k, v in Counter(a.risk for a in accounts).items()}
    assert set(shares) == set(RISK_CLASSES)
    assert shares["low"] > shares["medium"] > shares["high"] > 0.04


def test_riskier_behaviour_raises_the_latent_score():
    base = risk_features(random.Random(1))
    for feature, bump in (
        ("chargebacks_last_year", 2),
        ("failed_logins_24h", 5),
        ("country_risk", 0.5),
    ):
        assert latent_risk(base | {feature: base[feature] + bump}) > latent_risk(base)
    assert latent_risk(base | {"account_age_days": 2.0}) > latent_risk(
        base | {"account_age_days": 900.0}
    )


def test_the_split_holds_out_every_fifth_row():
    dataset = risk_dataset(1000, seed=2)
    assert len(dataset.validation_inputs) == 1000 // VALIDATION_EVERY
    assert len(dataset.train_inputs) + len(dataset.validation_inputs) == 1000
    assert dataset.onnx_input(dataset.validation_inputs).shape == (200, len(FEATURES))


def test_changing_one_label_changes_the_snapshot_id():
    dataset = risk_dataset(300, seed=2)
    labels = list(dataset.train_labels)
    labels[7] = "high" if labels[7] != "high" else "low"
    changed = dataclasses.replace(dataset, train_labels=labels)
    assert changed.snapshot_id != dataset.snapshot_id
    assert len(changed.snapshot_id) == 64
