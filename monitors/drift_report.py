"""Evidently HTML drift report of one model's confidence and predicted class, per tenant.

The window's raw rows (sampled evenly when there are many) are compared with the reference:
the rows of a reference window (tenant by tenant), or rows rebuilt from the version's baseline
(each fine confidence bin's midpoint repeated by its count, classes in their baseline shares),
which every tenant is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import AppConfig
from core.files import write_atomically
from core.timeutil import Window
from monitors.baselines import Baseline, BaselineStore
from storage import prediction_samples
from storage.engine import Engine

VALUE_COLUMNS = ("confidence", "predicted_class")
DEFAULT_MAX_ROWS = 200_000


class ReportInputError(LookupError):
    """The report cannot be built from what the store holds (no rows, no reference)."""


@dataclass(frozen=True)
class DriftReportSummary:
    path: Path
    model_name: str
    model_version: str
    current_rows: int
    reference_rows: int
    reference: str
    tenants: tuple[str, ...]
    values: dict[str, Any]


def busiest_version(engine: Engine, model_name: str, window: Window) -> str | None:
    """The version of `model_name` with the most successful predictions in the window."""
    return prediction_samples.busiest_version(engine, model_name, window.start, window.end)


def window_frame(
    engine: Engine, model_name: str, model_version: str, window: Window, max_rows: int
) -> pd.DataFrame:
    """Raw rows of the window, every k-th one (by id) when there are more than `max_rows`."""
    return prediction_samples.sampled_rows(
        engine, model_name, model_version, window.start, window.end, max_rows
    )


def allocate(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to `total` in proportion to `shares` (largest remainder)."""
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(int)
    remainder = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return np.asarray(counts)


def baseline_frame(baseline: Baseline, max_rows: int, seed: int = 0) -> pd.DataFrame:
    """Rows rebuilt from a baseline's confidence histogram and class counts."""
    histogram = baseline.confidence
    size = int(min(round(histogram.n), max_rows))
    confidence = np.repeat(histogram.midpoints, allocate(histogram.counts, size))
    names = sorted(baseline.class_counts)
    weights = np.array([baseline.class_counts[c] for c in names], dtype=float)
    classes = np.repeat(np.array(names, dtype=object), allocate(weights, size))
    np.random.default_rng(seed).shuffle(classes)
    return pd.DataFrame({"tenant": "*", "confidence": confidence, "predicted_class": classes})


def tenant_columns(frame: pd.DataFrame, tenants: tuple[str, ...], shared: bool) -> pd.DataFrame:
    """Confidence and class, overall and per tenant (`shared`: every tenant sees all rows).

    Evidently drops missing values column by column, so a tenant's column holds its rows and
    NaN elsewhere; the report then has one drift row per tenant and column.
    """
    columns: dict[str, pd.Series] = {c: frame[c] for c in VALUE_COLUMNS}
    for tenant in tenants:
        mask = pd.Series(True, index=frame.index) if shared else frame["tenant"] == tenant
        for column in VALUE_COLUMNS:
            columns[f"{column} · {tenant}"] = frame[column].where(mask)
    return pd.DataFrame(columns)


def build_drift_report(
    engine: Engine,
    config: AppConfig,
    model_name: str,
    window: Window,
    out: Path,
    *,
    model_version: str | None = None,
    reference_window: Window | None = None,
    baselines: BaselineStore | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> DriftReportSummary:
    """Write the Evidently HTML report to `out` and summarize what it compared."""
    version = model_version or busiest_version(engine, model_name, window)
    if version is None:
        raise ReportInputError(
            f"no successful predictions of {model_name!r} between "
            f"{window.start.isoformat()} and {window.end.isoformat()}"
        )
    current = window_frame(engine, model_name, version, window, max_rows)
    if current.empty:
        raise ReportInputError(f"no successful predictions of {model_name} {version} in the window")
    if reference_window is not None:
        reference = window_frame(engine, model_name, version, reference_window, max_rows)
        source, shared = "window", False
    else:
        store = baselines or BaselineStore(engine)
        baseline = store.get(model_name, version)
        if baseline is None:
            reason = store.problems.get((model_name, version), "unavailable")
            raise ReportInputError(f"no baseline for {model_name} {version}: {reason}")
        reference, source, shared = baseline_frame(baseline, max_rows), "baseline", True
    if reference.empty:
        raise ReportInputError(f"no reference predictions of {model_name} {version}")
    tenants = tuple(sorted(set(current["tenant"])))
    if not shared:  # a tenant absent from the reference window has nothing to compare with
        tenants = tuple(t for t in tenants if t in set(reference["tenant"]))
    values = _run_evidently(
        tenant_columns(current, tenants, shared=False),
        tenant_columns(reference, tenants, shared=shared),
        config,
        out,
    )
    return DriftReportSummary(
        out, model_name, version, len(current), len(reference), source, tenants, values
    )


def _run_evidently(
    current: pd.DataFrame, reference: pd.DataFrame, config: AppConfig, out: Path
) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in current.columns if c.startswith("confidence")]
    categorical = [c for c in current.columns if c.startswith("predicted_class")]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    # The same distances and warn levels as the monitors' Wasserstein and JS metrics.
    wasserstein = config.monitors.threshold("confidence_drift", "wasserstein_normalized")
    js = config.monitors.threshold("class_shift", "js_distance")
    preset = DataDriftPreset(
        columns=[*numerical, *categorical],
        num_method="wasserstein",
        cat_method="jensenshannon",
        num_threshold=wasserstein.warn if wasserstein else None,
        cat_threshold=js.warn if js else None,
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    write_atomically(out, snapshot.get_html_str(as_iframe=False))
    return {m["metric_name"]: m["value"] for m in snapshot.dict()["metrics"]}
