"""Predicted-class shift: statistics against scipy and the classes that moved most."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitors.class_shift import class_shift

REFERENCE = {"billing": 300, "technical": 250, "account": 200, "shipping": 150, "other": 100}
CURRENT = {"billing": 120, "technical": 260, "account": 210, "shipping": 160, "other": 90}


def test_statistics_match_scipy():
    shift = class_shift(REFERENCE, CURRENT)
    names = sorted(REFERENCE)
    ref = np.array([REFERENCE[c] for c in names], float)
    cur = np.array([CURRENT[c] for c in names], float)
    p, q = ref / ref.sum(), cur / cur.sum()
    assert shift["psi"].value == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=1e-12)
    assert shift["js_distance"].value == pytest.approx(jensenshannon(p, q), rel=1e-12)
    expected = stats.chisquare(cur, p * cur.sum())
    assert shift["chi_square"].value == pytest.approx(expected.statistic, rel=1e-9)
    assert shift["chi_square"].details["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)


def test_psi_and_js_carry_the_two_sample_homogeneity_test_of_the_counts():
    shift = class_shift(REFERENCE, CURRENT)
    names = sorted(REFERENCE)
    table = [[REFERENCE[c] for c in names], [CURRENT[c] for c in names]]
    expected = stats.chi2_contingency(table, correction=False)
    for metric in ("psi", "js_distance"):
        details = shift[metric].details
        assert details["test"] == "chi_square_homogeneity"
        assert details["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert details["dof"] == 4
    # Goodness of fit treats the reference as exact: more evidence than the two-sample test.
    assert shift["chi_square"].details["test"] == "chi_square_goodness_of_fit"
    assert shift["chi_square"].details["p_value"] < details["p_value"]


def test_moved_most_lists_the_largest_changes_first():
    movers = class_shift(REFERENCE, CURRENT)["psi"].details["moved_most"]
    assert next(m["class"] for m in movers) == "billing"
    assert movers[0]["change"] == pytest.approx(120 / 840 - 300 / 1000, abs=1e-6)
    assert len(movers) == 3


def test_a_class_unseen_in_the_reference_stays_finite_and_shows_up():
    shift = class_shift(REFERENCE, {**CURRENT, "fraud": 200}, classes=["refund"])
    assert np.isfinite(shift["psi"].value)
    assert shift["psi"].value > 0.25
    assert shift["psi"].details["moved_most"][0]["class"] == "fraud"
    assert shift["chi_square"].details["dof"] == 6


def test_identical_shares_do_not_shift():
    doubled = {k: 2 * v for k, v in REFERENCE.items()}
    shift = class_shift(REFERENCE, doubled)
    assert shift["psi"].value == pytest.approx(0.0, abs=1e-12)
    assert shift["psi"].details["moved_most"] == []


def test_needs_predictions_on_both_sides():
    with pytest.raises(ValueError, match="both"):
        class_shift(REFERENCE, {})
