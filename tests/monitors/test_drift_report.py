"""`servewatch report drift`: an Evidently HTML report per tenant against the reference."""

import dataclasses
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from core.config import AppConfig
from core.reports import LATEST, window_file
from core.timeutil import Window
from monitors.baselines import Baseline
from monitors.cli import report_app
from monitors.drift_report import (
    allocate,
    baseline_frame,
    build_drift_report,
    gather_evidence,
    prune,
    window_frame,
)
from monitors.runner import run_monitors, store_results
from tests.monitors import traffic

START, END = (t.isoformat() for t in traffic.WINDOW)
runner = CliRunner()


@pytest.fixture
def loaded_url(store_engine, store_url, isolated_settings):
    traffic.register_baseline(store_engine)
    traffic.load(store_engine, traffic.window_traffic(), traffic.previous_traffic())
    return store_url


def test_allocate_keeps_proportions_and_the_total():
    counts = allocate(np.array([1.0, 2.0, 7.0]), 11)
    assert counts.sum() == 11
    assert counts.tolist() == [1, 2, 8]


def test_baseline_rows_follow_the_baseline_shares():
    baseline = Baseline.from_reference("m", "v1", traffic.baseline_reference(n=4000))
    frame = baseline_frame(baseline, max_rows=1000)
    assert len(frame) == 1000
    shares = frame["predicted_class"].value_counts(normalize=True)
    expected = {k: v / 4000 for k, v in baseline.class_counts.items()}
    assert shares.to_dict() == pytest.approx(expected, abs=1e-3)
    assert frame["confidence"].mean() == pytest.approx(
        np.average(baseline.confidence.midpoints, weights=baseline.confidence.counts), abs=0.005
    )


def test_window_rows_are_sampled_evenly_when_there_are_too_many(store_engine):
    traffic.load(store_engine, traffic.window_traffic())
    window = Window(*traffic.WINDOW)
    everything = window_frame(store_engine, traffic.MODEL, "v1", window, max_rows=10_000)
    sampled = window_frame(store_engine, traffic.MODEL, "v1", window, max_rows=500)
    assert len(everything) == sum(
        1 for r in traffic.window_traffic() if r["status"] == "ok" and r["model_version"] == "v1"
    )
    assert 0 < len(sampled) <= 500
    assert set(sampled["tenant"]) == {"acme", "globex", "initech"}


# Evidently takes seconds per report: the SQL it needs is dialect-tested above, so run it once.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_report_drift_gives_one_verdict_per_tenant_and_names_what_it_covers(loaded_url, tmp_path):
    out = tmp_path / "reports" / "drift.html"
    result = runner.invoke(
        report_app,
        ["drift", "--model", traffic.MODEL, "--start", START, "--end", END,
         "--database-url", loaded_url, "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Drift report: ticket_classifier v1, all tenants" in page
    assert "2026-11-16T10:00:00Z .. 2026-11-16T11:00:00Z" in page
    verdicts = _verdict_rows(page)
    assert verdicts["tenant globex"][:2] == ["alert", "alert"]
    assert verdicts["tenant acme"][:2] == ["ok", "ok"]
    assert verdicts["tenant initech"][:2] == ["insufficient_data", "insufficient_data"]
    assert "globex: confidence_drift alert, class_shift alert" in result.stderr
    evidently = (tmp_path / "reports" / "drift.evidently.html").read_text()
    # Evidently embeds its widgets as JSON, with "·" escaped: one test per tenant and column,
    # and no dataset-level verdict that would count tenants as columns.
    assert "confidence \\u00b7 globex" in evidently
    assert "predicted_class \\u00b7 initech" in evidently
    assert "Dataset Drift" not in evidently
    assert "href='drift.evidently.html'" in page
    assert not list(out.parent.glob(".*.tmp"))


def _verdict_rows(page: str) -> dict[str, list[str]]:
    """Tenant -> the statuses in its row of the verdict table (servewatch's, then Evidently's)."""
    table = page.split("<h2>Verdict per tenant</h2>")[1].split("</table>")[0]
    rows = {}
    for row in table.split("<tr>")[2:]:
        name = row.split("<th>")[1].split("</th>")[0]
        rows[name] = [cell.split(">", 1)[1].split(" ")[0] for cell in row.split("<td")[1:]]
    return rows


@SQLITE_ONLY
def test_the_verdict_is_the_stored_monitor_decision_not_evidently_s(store_engine, tmp_path):
    traffic.register_baseline(store_engine)
    traffic.load(store_engine, traffic.window_traffic())
    window = Window(*traffic.WINDOW)
    # Stored rows that say acme's confidence alerts (a decision Evidently does not share on
    # these rows): the report must show the stored decision.
    outcome = run_monitors(store_engine, window, AppConfig())
    outcome.results = [
        dataclasses.replace(r, status="alert")
        if (r.monitor, r.metric, r.tenant) == ("confidence_drift", "psi", "acme")
        else r
        for r in outcome.results
    ]
    store_results(store_engine, outcome)
    summary = build_drift_report(
        store_engine, AppConfig(), traffic.MODEL, window, tmp_path / "r.html"
    )
    assert summary.verdicts["acme"]["confidence_drift"] == "alert"
    acme = _verdict_rows(summary.path.read_text())["tenant acme"]
    assert acme[0] == "alert"
    assert acme[2] == "not"  # Evidently: "not drifted" on the same rows


def test_report_drift_refuses_a_window_without_predictions(loaded_url, tmp_path):
    result = runner.invoke(
        report_app,
        ["drift", "--model", traffic.MODEL, "--start", "2020-01-01T00:00:00Z",
         "--end", "2020-01-02T00:00:00Z", "--database-url", loaded_url,
         "--out", str(tmp_path / "x.html")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no successful predictions of 'ticket_classifier'" in result.stderr
    assert not (tmp_path / "x.html").exists()


@SQLITE_ONLY
def test_per_tenant_drift_in_the_report_matches_scipy_on_the_same_rows(store_engine):
    traffic.load(store_engine, traffic.window_traffic(), traffic.previous_traffic())
    summary = gather_evidence(
        store_engine,
        AppConfig(),
        traffic.MODEL,
        "v1",
        Window(*traffic.WINDOW),
        reference_window=Window(*traffic.PREVIOUS),
    )
    assert summary.reference == "window"
    assert summary.tenants == ("acme", "globex", "initech")

    def ok(rows, tenant):
        return np.array(
            [r["confidence"] for r in rows if r["tenant"] == tenant and r["confidence"]]
        )

    for tenant in summary.tenants:
        current, reference = (
            ok(traffic.window_traffic(), tenant),
            ok(traffic.previous_traffic(), tenant),
        )
        expected = stats.wasserstein_distance(reference, current) / max(reference.std(), 0.001)
        key = f"ValueDrift(column=confidence · {tenant},method=wasserstein,threshold=0.1)"
        assert summary.values[key] == pytest.approx(expected, rel=1e-9)
        test = summary.drift[tenant]["confidence"]
        assert (test.method, test.threshold) == ("wasserstein", 0.1)
        assert test.score == pytest.approx(expected, rel=1e-9)
        assert test.detected == (expected >= 0.1)
    assert summary.drift["globex"]["confidence"].detected
    assert not summary.drift["acme"]["confidence"].detected


def test_pruning_keeps_the_newest_window_pages_and_latest(tmp_path):
    names = [window_file(traffic.T0 + timedelta(minutes=5 * k)) for k in (3, 1, 2, 0)]
    for name in [*names, LATEST]:
        (tmp_path / name).write_text(name)
    prune(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*sorted(names)[-2:], LATEST])
