"""The traffic monitor: usual rate, volume drop, when a key is judged, and the hourly cache."""

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import event

from core.config import AppConfig
from core.timeutil import Window
from monitors.aggregate_source import SqlAggregates
from monitors.thresholds import classify
from monitors.traffic import (
    HourlyHistory,
    UsualRate,
    history_span,
    hourly_by_key,
    usual_rate,
    volume_drop,
)
from storage.aggregates import hourly_counts
from tests.monitors import traffic

THRESHOLD = AppConfig().monitors.threshold("traffic", "volume_drop")
MIN_EXPECTED = AppConfig().monitors.traffic.min_expected


def test_the_usual_rate_is_the_median_hour_with_quiet_hours_counted():
    # A burst and a short pause leave the median alone; hours without rows count as 0.
    counts = {0: 100, 1: 5000, 2: 110, 4: 90, 5: 105}
    assert usual_rate(counts, 6 * 3600) == UsualRate(per_hour=102.5, hours=6)
    assert usual_rate({0: 100, 1: 100}, 2.5 * 3600) == UsualRate(per_hour=100.0, hours=2)
    assert usual_rate({0: 30}, 1800) == UsualRate(per_hour=60.0, hours=1)


def test_volume_drop_scales_the_rate_to_the_window_and_is_higher_when_worse():
    usual = UsualRate(per_hour=600, hours=24)
    for count, drop in ((0, 1.0), (15, 0.95), (150, 0.5), (300, 0.0), (450, -0.5)):
        measurement = volume_drop(count, usual, 1800, 50)["volume_drop"]
        assert measurement.value == pytest.approx(drop)
        assert measurement.details["expected"] == pytest.approx(300)
    assert classify(1.0, THRESHOLD) == ("alert", 0.9)
    assert classify(0.6, THRESHOLD)[0] == "warn"


def test_a_key_is_not_judged_when_its_usual_rate_predicts_too_few_predictions():
    measurement = volume_drop(0, UsualRate(per_hour=40, hours=168), 3600, 50)["volume_drop"]
    assert measurement.value is None
    assert "fewer than 50" in measurement.details["reason"]
    assert measurement.details["expected"] == 40


def _simulated_drops(expected: float, trials: int, seed: int, overdispersion: float = 0.0):
    """volume_drop of stationary traffic: 168 reference hours and a one-hour window per trial.

    Poisson counts; with `overdispersion` each hour's rate itself varies (gamma, that CV).
    NaN where the key is not judged (its median hour fell below min_expected).
    """
    rng = np.random.default_rng(seed)
    shape = 1 / overdispersion**2 if overdispersion else None

    def counts(size):
        rates = expected if shape is None else rng.gamma(shape, expected / shape, size)
        return rng.poisson(rates, size)

    medians = np.median(counts((trials, 168)), axis=1)  # usual_rate over 168 whole hours
    windows = counts(trials)
    drops = [
        volume_drop(n, UsualRate(float(m), 168), 3600, MIN_EXPECTED)["volume_drop"].value
        for m, n in zip(medians, windows, strict=True)
    ]
    return np.array([np.nan if d is None else d for d in drops])


@pytest.mark.parametrize("expected", [50, 100, 1000])
def test_stationary_traffic_almost_never_warns_once_a_key_is_judged(expected):
    """Measured over 20,000 seeded windows per rate: Poisson noise alone, and with each hour's
    rate varying by a CV of 0.15 (bursty tenants)."""
    for overdispersion, limit in ((0.0, 0.001), (0.15, 0.005)):
        drops = _simulated_drops(expected, 20_000, seed=expected, overdispersion=overdispersion)
        judged = drops[~np.isnan(drops)]
        assert len(judged) >= 0.4 * len(drops)  # at exactly min_expected, about half are
        assert (judged >= THRESHOLD.warn).mean() <= limit, (expected, overdispersion)
        assert (judged >= THRESHOLD.alert).mean() == 0


def test_a_stop_alerts_and_a_drop_to_a_third_warns_from_the_first_judged_rate():
    usual = usual_rate(dict(enumerate(np.full(168, MIN_EXPECTED))), 168 * 3600)
    stop = volume_drop(0, usual, 3600, MIN_EXPECTED)["volume_drop"].value
    third = volume_drop(MIN_EXPECTED / 3, usual, 3600, MIN_EXPECTED)["volume_drop"].value
    assert classify(stop, THRESHOLD)[0] == "alert"
    assert classify(third, THRESHOLD)[0] == "warn"


def test_the_history_ends_at_the_whole_hour_before_the_window():
    window = Window(traffic.T0 + timedelta(minutes=35), traffic.T0 + timedelta(minutes=95))
    span = history_span(window, 24)
    assert (span.start, span.end) == (traffic.T0 - timedelta(hours=24), traffic.T0)


def test_hourly_counts_per_key_add_up_to_the_all_tenant_key():
    frame = hourly_counts_frame()
    keyed = hourly_by_key(frame)
    assert keyed[("ticket_classifier", "v1", "*")] == {0: 2200.0, 1: 2730.0}
    assert keyed[("ticket_classifier", "v1", "initech")] == {0: 200.0, 1: 30.0}


def hourly_counts_frame():
    import pandas as pd

    rows = [
        ("ticket_classifier", "v1", "acme", 0, 1000),
        ("ticket_classifier", "v1", "globex", 0, 1000),
        ("ticket_classifier", "v1", "initech", 0, 200),
        ("ticket_classifier", "v1", "acme", 1, 1500),
        ("ticket_classifier", "v1", "globex", 1, 1200),
        ("ticket_classifier", "v1", "initech", 1, 30),
    ]
    return pd.DataFrame(rows, columns=["model_name", "model_version", "tenant", "hour", "n"])


def _statements(engine):
    seen = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_the_history_reads_each_closed_hour_once_and_answers_as_sql_does(store_engine):
    traffic.load(store_engine, traffic.previous_traffic(), traffic.window_traffic())
    history = HourlyHistory(SqlAggregates(store_engine))
    span = Window(traffic.T0 - timedelta(hours=3), traffic.T0 + timedelta(hours=1))
    first = history.counts(span)
    direct = hourly_counts(store_engine, span.start, span.end)
    key = ["model_name", "model_version", "tenant", "hour"]
    assert (
        first.sort_values(key)
        .reset_index(drop=True)
        .equals(direct.sort_values(key).reset_index(drop=True))
    )
    statements = _statements(store_engine)
    later = Window(span.start + timedelta(hours=1), span.end + timedelta(hours=1))
    shifted = history.counts(later)
    assert len(statements) == 1  # only the hour that closed since
    assert shifted.groupby("hour")["n"].sum().to_dict() == {1: 2200, 2: 2730}
    history.counts(later)
    assert len(statements) == 1


def test_the_history_refuses_a_span_off_whole_hours(store_engine):
    span = Window(traffic.T0 + timedelta(minutes=5), traffic.T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="whole hours"):
        HourlyHistory(SqlAggregates(store_engine)).counts(span)
