"""References chosen by config: a trailing window, or each key's first hours in production."""

from datetime import timedelta

import pytest

from core.config import AppConfig
from core.timeutil import Window
from monitors.aggregate_source import SqlAggregates
from monitors.baselines import BaselineStore
from monitors.references import ProductionReferences
from monitors.runner import run_monitors
from tests.monitors import traffic

WINDOW = Window(*traffic.WINDOW)
PREVIOUS = Window(*traffic.PREVIOUS)
HOURS = 24
# acme and globex started 30 hours before the window (their first day has ended), initech two
# hours before it (its first day has not).
STARTED = traffic.T0 - timedelta(hours=30)
LATE = traffic.T0 - timedelta(hours=2)


def _no_registry(model_name, version):
    return None


def _config(**monitors):
    return AppConfig.model_validate({"monitors": monitors})


def _rows(outcome, monitor, metric):
    return {r.tenant: r for r in outcome.results if r.monitor == monitor and r.metric == metric}


@pytest.fixture
def serving(store_engine):
    """v1 in service since STARTED (acme, globex; initech since LATE), then the window."""
    traffic.load(
        store_engine,
        traffic.records("acme", 1000, STARTED, seed=21),
        traffic.records("globex", 800, STARTED, seed=22),
        # Day two, still inside nobody's first 24 hours but the late tenant's: not reference.
        traffic.records("acme", 500, STARTED + timedelta(hours=25), drifted=True, seed=23),
        traffic.records("initech", 400, LATE, seed=24),
        traffic.window_traffic(),
    )
    return store_engine


def test_production_references_compare_each_tenant_with_its_own_first_hours(serving):
    traffic.register_baseline(serving)
    store = BaselineStore(serving, registry=_no_registry)
    config = _config(reference="production", production_reference_hours=HOURS)
    outcome = run_monitors(serving, WINDOW, config, baselines=store)
    psi = _rows(outcome, "confidence_drift", "psi")
    assert psi["acme"].details["reference"] == "production"
    assert psi["acme"].details["reference_n"] == 1000  # its first day, not its drifted second
    assert psi["acme"].status == "ok"
    assert psi["globex"].details["reference_n"] == 800
    assert psi["globex"].status == "alert"
    # All tenants: the version's first day (acme's and globex's, initech had not started).
    assert psi["*"].details["reference"] == "production"
    assert psi["*"].details["reference_n"] == 1800
    # initech's first day ends after the window starts: its baseline stands in until then.
    late = psi["initech"].details["reference"]
    complete = (LATE + timedelta(hours=HOURS)).isoformat()
    assert late == f"baseline (production reference for tenant initech complete at {complete})"
    shift = _rows(outcome, "class_shift", "psi")
    assert shift["globex"].details["reference"] == "production"
    assert shift["globex"].status == "alert"


def test_without_a_baseline_a_tenant_waits_for_its_production_reference(serving):
    store = BaselineStore(serving, registry=_no_registry)
    config = _config(reference="production", production_reference_hours=HOURS)
    outcome = run_monitors(serving, WINDOW, config, baselines=store, monitors=["class_shift"])
    psi = _rows(outcome, "class_shift", "psi")
    assert psi["acme"].status == "ok"
    assert psi["initech"].status == "insufficient_data"
    reason = psi["initech"].details["reason"]
    assert "production reference for tenant initech complete at" in reason
    assert "no baseline for ticket_classifier v1" in reason


def test_serving_starts_and_ended_references_are_read_once_per_store(serving):
    store = BaselineStore(serving, registry=_no_registry)
    first = ProductionReferences(SqlAggregates(serving), WINDOW, HOURS, store)
    assert first.ready(("ticket_classifier", "v1", "acme")) is not None
    assert store.production.scanned_until == WINDOW.end
    cached = dict(store.production.references)
    assert {key[2] for key in cached} == {"acme", "globex", "*"}
    # A later window reads only rows after the last scan; what ended stays as it was read.
    later = Window(WINDOW.end, WINDOW.end + timedelta(hours=1))
    traffic.load(serving, traffic.records("hooli", 300, later.start, seed=31))
    second = ProductionReferences(SqlAggregates(serving), later, HOURS, store)
    assert second.periods[("ticket_classifier", "v1", "hooli")].start >= later.start
    assert second.periods[("ticket_classifier", "v1", "acme")].start == STARTED
    assert (
        second.ready(("ticket_classifier", "v1", "acme"))
        is cached[("ticket_classifier", "v1", "acme", STARTED, STARTED + timedelta(hours=HOURS))]
    )


def test_a_window_reference_from_config_is_the_trailing_hours(store_engine):
    traffic.load(store_engine, traffic.window_traffic(), traffic.previous_traffic())
    store = BaselineStore(store_engine, registry=_no_registry)
    config = _config(reference="window", reference_window_hours=1)
    trailing = run_monitors(store_engine, WINDOW, config, baselines=store)
    explicit = run_monitors(
        store_engine, WINDOW, AppConfig(), baselines=store, reference_window=PREVIOUS
    )
    # The drift monitors compare with the same hours (the traffic monitor's usual rate has a
    # reference period of its own, monitors.traffic.reference_hours).
    drift = ("confidence_drift", "class_shift")
    assert [(r.key, r.status, r.value) for r in trailing.results if r.monitor in drift] == [
        (r.key, r.status, r.value) for r in explicit.results if r.monitor in drift
    ]
    assert _rows(trailing, "confidence_drift", "psi")["acme"].details["reference"] == "window"
