"""The runner on the real store (SQLite and PostgreSQL): rows, statuses, references, storage."""

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from core.config import AppConfig, MonitorsConfig, TrafficConfig
from core.timeutil import Window
from monitors.aggregate_source import aggregate_source
from monitors.baselines import Baseline, BaselineStore
from monitors.drift import confidence_drift
from monitors.histograms import FINE_EDGES, ConfidenceHistogram, normalize_edges
from monitors.runner import UnknownModelError, run_monitors, store_results
from storage import rollups
from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.schema import monitor_results, predictions
from tests.monitors import traffic

CONFIG = AppConfig()
# The traffic monitor's usual rate over the two hours of test traffic.
TWO_HOURS = AppConfig(monitors=MonitorsConfig(traffic=TrafficConfig(reference_hours=2)))
SILENT_MONITORS = ("confidence_drift", "class_shift", "schema_failures", "traffic")
WINDOW = Window(*traffic.WINDOW)
PREVIOUS = Window(*traffic.PREVIOUS)


def _no_registry(model_name, version):
    return None


@pytest.fixture
def loaded(store_engine):
    traffic.register_baseline(store_engine)
    traffic.load(store_engine, traffic.window_traffic(), traffic.previous_traffic())
    return store_engine


def _run(engine, **kwargs):
    baselines = BaselineStore(engine, registry=_no_registry)
    return run_monitors(engine, WINDOW, CONFIG, baselines=baselines, **kwargs)


def _rows(outcome, monitor, metric=None):
    return {
        (r.model_version, r.tenant, r.metric): r
        for r in outcome.results
        if r.monitor == monitor and (metric is None or r.metric == metric)
    }


def test_confidence_drift_matches_the_pure_computation_on_raw_rows(loaded):
    outcome = _run(loaded, monitors=["confidence_drift"])
    baseline = Baseline.from_reference("ticket_classifier", "v1", traffic.baseline_reference())
    cutoff = CONFIG.monitors.low_confidence_cutoff
    grid = normalize_edges(FINE_EDGES, [cutoff])  # the deciles are snapped onto it
    acme = [r["confidence"] for r in traffic.window_traffic() if r["tenant"] == "acme"]
    acme = np.array([c for c in acme if c is not None])
    current = ConfidenceHistogram.from_counts(grid, np.histogram(acme, grid)[0])
    expected = confidence_drift(baseline.confidence, current, baseline.quantile_edges, cutoff)
    rows = _rows(outcome, "confidence_drift")
    for metric, measurement in expected.items():
        row = rows[("v1", "acme", metric)]
        assert row.value == pytest.approx(measurement.value, rel=1e-9, abs=1e-12), metric
        assert row.n == len(acme)


def test_statuses_separate_drift_from_noise_and_small_samples(loaded):
    outcome = _run(loaded)
    psi = _rows(outcome, "confidence_drift", "psi")
    assert psi[("v1", "acme", "psi")].status == "ok"
    assert psi[("v1", "globex", "psi")].status == "alert"
    small = psi[("v1", "initech", "psi")]
    assert small.status == "insufficient_data"
    assert small.value is None
    assert small.n == 30
    assert "fewer than 100" in small.details["reason"]
    everyone = psi[("v1", "*", "psi")]
    assert everyone.n == sum(r.n for k, r in psi.items() if k[1] != "*")
    shift = _rows(outcome, "class_shift", "psi")
    assert shift[("v1", "acme", "psi")].status == "ok"
    assert shift[("v1", "globex", "psi")].status == "alert"
    moved = shift[("v1", "globex", "psi")].details["moved_most"]
    assert moved[0]["class"] == "billing"


def test_drift_rows_carry_the_test_its_p_value_and_the_correction_for_the_runs_keys(loaded):
    outcome = _run(loaded, monitors=["confidence_drift", "class_shift"])
    for monitor in ("confidence_drift", "class_shift"):
        rows = _rows(outcome, monitor, "psi")
        acme, globex = rows[("v1", "acme", "psi")], rows[("v1", "globex", "psi")]
        assert acme.details["test"] == globex.details["test"] == "chi_square_homogeneity"
        assert 0 <= acme.details["p_value"] <= 1
        assert globex.details["p_value"] < 1e-12
        assert globex.details["decided_by"] == "effect_floor"
        # acme, globex and all tenants are judged; initech's 30 predictions are not.
        assert acme.details["keys_judged"] == 3
        assert acme.details["alpha"] == {"warn": 0.01 / 3, "alert": 0.001 / 3}
    assert "keys_judged" not in rows[("v1", "initech", "psi")].details


def test_metrics_without_thresholds_are_ok_with_a_null_threshold(loaded):
    outcome = _run(loaded, monitors=["class_shift"])
    chi = _rows(outcome, "class_shift", "chi_square")[("v1", "globex", "chi_square")]
    assert chi.status == "ok"
    assert chi.threshold is None
    assert chi.value > 100


def test_schema_failure_rate_counts_model_errors_among_inference_outputs(loaded):
    outcome = _run(loaded, monitors=["schema_failures"])
    rows = _rows(outcome, "schema_failures")
    window = traffic.window_traffic()
    for tenant in ("acme", "globex"):
        statuses = Counter(r["status"] for r in window if r["tenant"] == tenant)
        row = rows[("v1", tenant, "failure_rate")]
        assert row.value == pytest.approx(statuses["model_error"] / sum(statuses.values()))
        assert row.n == sum(statuses.values())
    assert rows[("v1", "globex", "failure_rate")].status == "alert"
    assert rows[("v1", "initech", "failure_rate")].status == "insufficient_data"


def test_cost_rows_add_up_to_the_capacity_of_the_window(loaded):
    outcome = _run(loaded, monitors=["cost"])
    rows = _rows(outcome, "cost")
    total = rows[("*", "*", "total_cost_usd")]
    capacity = CONFIG.pricing.capacity
    fees = total.details["fee_usd"]  # per request, on top of the capacity
    assert total.value == pytest.approx(capacity.replicas * capacity.hourly_rate_usd + fees)
    assert total.n == len(traffic.window_traffic())
    tenants = [
        r.value
        for k, r in rows.items()
        if k[0] == "v1" and k[1] != "*" and k[2] == "total_cost_usd"
    ]
    assert sum(tenants) == pytest.approx(rows[("v1", "*", "total_cost_usd")].value)
    per_1k = rows[("v1", "*", "cost_per_1k_predictions_usd")]
    attributed = rows[("v1", "*", "attributed_cost_usd")].value
    assert per_1k.value == pytest.approx(attributed / per_1k.n * 1000)
    assert outcome.costs is not None
    assert set(outcome.costs["tenant"]) == {
        "acme",
        "globex",
        "initech",
    }


def test_a_reference_window_compares_tenant_by_tenant(loaded):
    outcome = _run(loaded, reference_window=PREVIOUS, monitors=["confidence_drift", "class_shift"])
    psi = _rows(outcome, "confidence_drift", "psi")
    assert psi[("v1", "acme", "psi")].status == "ok"
    assert psi[("v1", "globex", "psi")].status == "alert"
    assert psi[("v1", "acme", "psi")].details["reference"] == "window"
    assert psi[("v1", "initech", "psi")].status == "insufficient_data"


def test_a_version_without_baseline_is_insufficient_data_with_the_reason(store_engine):
    traffic.load(store_engine, traffic.records("acme", 300, traffic.T0, version="v9", seed=5))
    outcome = _run(store_engine, monitors=["confidence_drift"])
    row = _rows(outcome, "confidence_drift", "psi")[("v9", "acme", "psi")]
    assert row.status == "insufficient_data"
    assert "no baseline for ticket_classifier v9" in row.details["reason"]


def test_an_unknown_model_is_refused(loaded):
    with pytest.raises(UnknownModelError, match="fraud_model"):
        _run(loaded, model_name="fraud_model")


def test_a_window_long_before_any_traffic_has_rows_only_for_registered_versions(loaded):
    traffic.register_baseline(loaded, version="v2")
    empty = Window(traffic.T0.replace(year=2020), traffic.T0.replace(year=2021))
    baselines = BaselineStore(loaded, registry=_no_registry)
    outcome = run_monitors(loaded, empty, CONFIG, baselines=baselines, monitors=SILENT_MONITORS)
    assert {(r.monitor, r.model_version, r.tenant) for r in outcome.results} == {
        (monitor, version, "*") for monitor in SILENT_MONITORS for version in ("v1", "v2")
    }
    assert {r.status for r in outcome.results} == {"insufficient_data"}
    assert {r.n for r in outcome.results} == {0}


def test_an_empty_window_keeps_a_row_for_every_tenant_seen_in_the_reference(loaded):
    """The hour after the traffic: no predictions, yet every key of the two hours before."""
    after = Window(traffic.WINDOW[1], traffic.WINDOW[1] + timedelta(hours=1))
    outcome = run_monitors(
        loaded,
        after,
        TWO_HOURS,
        baselines=BaselineStore(loaded, registry=_no_registry),
        monitors=SILENT_MONITORS,
    )
    keys = {(r.monitor, r.model_version, r.tenant) for r in outcome.results}
    tenants = ("*", "acme", "globex", "initech")
    assert keys == {(m, "v1", t) for m in SILENT_MONITORS for t in tenants}
    for row in outcome.results:
        if row.monitor == "traffic":
            assert (row.status, row.value, row.n) == ("alert", 1.0, 0), row.key
            continue
        assert (row.status, row.value, row.n) == ("insufficient_data", None, 0), row.key
        assert "no predictions of ticket_classifier v1" in row.details["reason"]


def test_traffic_compares_the_window_with_the_median_hourly_count_before_it(loaded):
    later = Window(traffic.WINDOW[1], traffic.WINDOW[1] + timedelta(hours=1))
    traffic.load(loaded, traffic.records("acme", 500, later.start, seed=21))
    outcome = run_monitors(
        loaded,
        later,
        TWO_HOURS,
        baselines=BaselineStore(loaded, registry=_no_registry),
        monitors=["traffic"],
    )
    rows = _rows(outcome, "traffic")
    # acme had 1000 then 1500 predictions an hour: usual 1250, so 500 is a 0.6 drop.
    acme = rows[("v1", "acme", "volume_drop")]
    assert acme.value == pytest.approx(1 - 500 / 1250)
    assert (acme.status, acme.n, acme.threshold) == ("warn", 500, 0.5)
    assert acme.details["expected"] == pytest.approx(1250)
    assert acme.details["reference"] == "history"
    everyone = rows[("v1", "*", "volume_drop")]
    assert everyone.value == pytest.approx(1 - 500 / ((2200 + 2730) / 2))
    assert everyone.status == "warn"


def test_traffic_does_not_judge_a_key_whose_usual_rate_is_too_low_to_tell(loaded):
    """initech: 200 then 30 an hour, a usual 115; asked for at least 150 it is not judged."""
    after = Window(traffic.WINDOW[1], traffic.WINDOW[1] + timedelta(hours=1))
    config = AppConfig(
        monitors=MonitorsConfig(traffic=TrafficConfig(reference_hours=2, min_expected=150))
    )
    outcome = run_monitors(
        loaded,
        after,
        config,
        baselines=BaselineStore(loaded, registry=_no_registry),
        monitors=["traffic"],
    )
    initech = _rows(outcome, "traffic")[("v1", "initech", "volume_drop")]
    assert (initech.status, initech.value) == ("insufficient_data", None)
    assert "fewer than 150" in initech.details["reason"]
    assert initech.details["expected"] == pytest.approx(115)
    assert _rows(outcome, "traffic")[("v1", "acme", "volume_drop")].status == "alert"


def test_traffic_against_a_reference_window_uses_its_hours(loaded):
    outcome = _run(loaded, reference_window=PREVIOUS, monitors=["traffic"])
    rows = _rows(outcome, "traffic")
    acme = rows[("v1", "acme", "volume_drop")]
    assert acme.value == pytest.approx(1 - 1500 / 1000)
    assert (acme.status, acme.details["reference"]) == ("ok", "window")


def test_storing_twice_replaces_rows_instead_of_duplicating_them(loaded):
    outcome = _run(loaded)
    store_results(loaded, outcome)
    store_results(loaded, _run(loaded))
    with loaded.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(monitor_results)).scalar()
    assert stored == len(outcome.results)
    assert len({r.key for r in outcome.results}) == len(outcome.results)


def test_every_row_is_the_same_as_on_a_fresh_sqlite_store(loaded, tmp_path):
    """On PostgreSQL this compares the two dialects; every value, n and status must agree."""
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    upgrade(url)
    twin = create_store_engine(url)
    try:
        traffic.register_baseline(twin)
        traffic.load(twin, traffic.window_traffic(), traffic.previous_traffic())
        expected = {r.key: r for r in _run(twin).results}
        expected_window = {r.key: r for r in _run(twin, reference_window=PREVIOUS).results}
    finally:
        twin.dispose()
    for got, want in (
        (_run(loaded).results, expected),
        (_run(loaded, reference_window=PREVIOUS).results, expected_window),
    ):
        assert {r.key for r in got} == set(want)
        for row in got:
            other = want[row.key]
            assert (row.status, row.n, row.threshold) == (other.status, other.n, other.threshold)
            if row.value is None:
                assert other.value is None
            else:
                assert row.value == pytest.approx(other.value, rel=1e-9, abs=1e-12), row.key


def _comparable(outcome):
    """Each result's value, status, count and details, by key (values rounded to 1e-9)."""

    def close(value):
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, dict):
            return {k: close(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [close(v) for v in value]
        return value

    return {
        r.key: (close(r.value), r.threshold, r.status, r.n, close(dict(r.details)))
        for r in outcome.results
    }


@pytest.mark.parametrize("reference", ["baseline", "window", "production"])
def test_monitors_read_from_rollups_give_the_results_of_raw_rows(loaded, reference):
    config = AppConfig(
        monitors=MonitorsConfig(
            reference=reference,
            reference_window_hours=1,
            production_reference_hours=1,
            traffic=TrafficConfig(reference_hours=2),
        )
    )
    shifted = Window(WINDOW.start + timedelta(seconds=17.5), WINDOW.end - timedelta(seconds=3))
    for window in (WINDOW, shifted):
        outcomes = {
            kind: run_monitors(
                loaded,
                window,
                config,
                baselines=BaselineStore(loaded, registry=_no_registry),
                source=aggregate_source(loaded, kind),
            )
            for kind in ("raw", "rollups")
        }
        assert outcomes["raw"].results
        assert _comparable(outcomes["rollups"]) == _comparable(outcomes["raw"])


@pytest.mark.parametrize("reference", ["baseline", "window"])
def test_drift_from_rollups_needs_no_raw_row_of_whole_minutes(loaded, reference):
    """The deciles are snapped to the fine grid, so the rollups answer the drift monitor alone:
    with the window's raw rows gone, the rows are those raw rows gave."""
    config = AppConfig(monitors=MonitorsConfig(reference=reference, reference_window_hours=1))

    def drift(kind):
        baselines = BaselineStore(loaded, registry=_no_registry)
        source = aggregate_source(loaded, kind)
        monitors = ["confidence_drift"]
        return run_monitors(
            loaded, WINDOW, config, baselines=baselines, source=source, monitors=monitors
        )

    from_raw = drift("raw")
    assert {r.status for r in from_raw.results} >= {"ok", "alert"}
    rollups.fold_pending(loaded)
    with loaded.begin() as connection:
        connection.execute(delete(predictions).where(predictions.c.ts >= PREVIOUS.start))
    assert drift("raw").results != from_raw.results  # the raw rows are gone indeed
    assert _comparable(drift("rollups")) == _comparable(from_raw)
