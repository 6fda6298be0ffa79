"""Shift of predicted-class shares between a reference and a window (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from core.contracts import metric_names
from monitors.distances import (
    P_VALUE_KEY,
    PSI_EPSILON,
    TEST_KEY,
    chi_square,
    chi_square_pvalue,
    homogeneity,
    js_distance,
    psi,
    shares,
)
from monitors.results import Measurement

MONITOR = "class_shift"
METRICS = metric_names(MONITOR)
TOP_MOVERS = 3


def class_shift(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    classes: Iterable[str] = (),
    epsilon: float = PSI_EPSILON,
    top: int = TOP_MOVERS,
) -> dict[str, Measurement]:
    """PSI, Jensen-Shannon distance and chi-square of class shares, with the classes that moved.

    PSI and JS carry the chi-square homogeneity test of the two count vectors (both are samples);
    the `chi_square` metric is the goodness-of-fit statistic against the reference shares.
    """
    names = sorted(set(classes) | set(reference) | set(current))
    ref = np.array([float(reference.get(c, 0.0)) for c in names])
    cur = np.array([float(current.get(c, 0.0)) for c in names])
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("class shift needs predictions in both the reference and the window")
    statistic = chi_square(ref, cur, epsilon)
    sizes = {"reference_n": round(float(ref.sum()), 6), "current_n": round(float(cur.sum()), 6)}
    movers = {
        **sizes,
        **homogeneity(ref, cur).details(),
        "moved_most": movers_table(names, ref, cur, top),
    }
    fit = {
        TEST_KEY: "chi_square_goodness_of_fit",
        P_VALUE_KEY: chi_square_pvalue(statistic, len(names)),
        "dof": len(names) - 1,
    }
    return {
        "psi": Measurement(psi(ref, cur, epsilon), movers),
        "js_distance": Measurement(js_distance(ref, cur), movers),
        "chi_square": Measurement(statistic, {**sizes, **fit}),
    }


def movers_table(
    names: list[str], reference: np.ndarray, current: np.ndarray, top: int
) -> list[dict[str, float | str]]:
    """The `top` classes whose share changed most, largest absolute change first."""
    ref_shares, cur_shares = shares(reference), shares(current)
    change = cur_shares - ref_shares
    order = sorted(range(len(names)), key=lambda i: (-abs(change[i]), names[i]))
    return [
        {
            "class": names[i],
            "reference_share": round(float(ref_shares[i]), 6),
            "current_share": round(float(cur_shares[i]), 6),
            "change": round(float(change[i]), 6),
        }
        for i in order[:top]
        if change[i] != 0
    ]
