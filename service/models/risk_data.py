"""Seeded tabular accounts for the risk scorer: named features and a low/medium/high risk class.

Each account is drawn from a hidden profile (regular, careless, fraudulent); its class comes from
a latent risk score over the features plus noise, so the classes overlap as real ones do. Pure
and deterministic (stdlib `random`); `risk_features(rng)` is also the demo traffic's source.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

FEATURES: tuple[str, ...] = (
    "account_age_days",
    "orders_last_30d",
    "avg_order_value",
    "chargebacks_last_year",
    "failed_logins_24h",
    "country_risk",
    "shipping_billing_mismatch",
    "distinct_cards_30d",
)
RISK_CLASSES: tuple[str, ...] = ("low", "medium", "high")
PROFILES: Mapping[str, float] = {"regular": 0.78, "careless": 0.15, "fraudulent": 0.07}
# Latent score cut points: about 65 % low, 25 % medium, 10 % high.
MEDIUM_FROM = 0.2
HIGH_FROM = 1.5
NOISE_SCALE = 0.2


@dataclass(frozen=True)
class Account:
    features: dict[str, float]
    risk: str


def generate_accounts(n: int, seed: int) -> list[Account]:
    """`n` accounts drawn with `seed`."""
    rng = random.Random(seed)
    return [_account(rng) for _ in range(n)]


def risk_features(rng: random.Random) -> dict[str, float]:
    """One account's features, in FEATURES order."""
    return _account(rng).features


def _account(rng: random.Random) -> Account:
    profile = rng.choices(list(PROFILES), weights=list(PROFILES.values()))[0]
    features = _features(rng, profile)
    return Account(features, risk_class(latent_risk(features) + _logistic(rng) * NOISE_SCALE))


def _features(rng: random.Random, profile: str) -> dict[str, float]:
    fraud = profile == "fraudulent"
    careless = profile == "careless"
    age_median = 25.0 if fraud else 400.0
    values = {
        "account_age_days": float(min(round(rng.lognormvariate(math.log(age_median), 1.1)), 5000)),
        "orders_last_30d": float(_poisson(rng, 7.0 if fraud else 2.0)),
        "avg_order_value": round(rng.lognormvariate(math.log(160.0 if fraud else 55.0), 0.6), 2),
        "chargebacks_last_year": float(_poisson(rng, 1.2 if fraud else 0.5 if careless else 0.05)),
        "failed_logins_24h": float(_poisson(rng, 3.0 if fraud else 1.0 if careless else 0.15)),
        "country_risk": round(rng.betavariate(3.0, 3.0) if fraud else rng.betavariate(1.5, 6.0), 3),
        "shipping_billing_mismatch": float(rng.random() < (0.6 if fraud else 0.08)),
        "distinct_cards_30d": float(1 + _poisson(rng, 2.0 if fraud else 0.4 if careless else 0.1)),
    }
    return {name: values[name] for name in FEATURES}


def latent_risk(features: Mapping[str, float]) -> float:
    """The noise-free risk score of an account; higher is riskier."""
    return float(
        -1.6
        + 1.6 * math.exp(-features["account_age_days"] / 45.0)
        + 0.35 * features["orders_last_30d"] ** 0.5
        + 0.004 * features["avg_order_value"]
        + 0.8 * features["chargebacks_last_year"]
        + 0.3 * features["failed_logins_24h"]
        + 2.2 * features["country_risk"]
        + 0.8 * features["shipping_billing_mismatch"]
        + 0.35 * (features["distinct_cards_30d"] - 1.0)
    )


def risk_class(score: float) -> str:
    """The class of a (noisy) latent score."""
    if score >= HIGH_FROM:
        return "high"
    return "medium" if score >= MEDIUM_FROM else "low"


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _logistic(rng: random.Random) -> float:
    u = min(max(rng.random(), 1e-12), 1 - 1e-12)
    return math.log(u / (1 - u))
