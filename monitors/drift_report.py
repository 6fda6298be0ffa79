"""Drift report of one model version over one window: servewatch's verdict per tenant, with
Evidently's drift tests on the same rows as supporting detail.

The verdicts are the monitors' own rows (confidence_drift, class_shift) for the window: the
statuses the alerts are built on. Evidently compares the window's raw rows (sampled evenly when
there are many) with the reference, one ValueDrift test per tenant and column (never a
dataset-level share of drifted columns, which would count tenants as columns); its interactive
HTML is written beside the page. The reference is the rows of a reference window (tenant by
tenant), or rows rebuilt from the version's baseline (each fine confidence bin's midpoint
repeated by its count, classes in their baseline shares), which every tenant is compared with.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import AppConfig
from core.contracts import ALL, STATUS_CODES
from core.files import write_atomically
from core.reports import LATEST, path_part, report_path, window_file
from core.timeutil import Window, iso_utc
from monitors import class_shift, drift
from monitors.baselines import Baseline, BaselineStore
from monitors.results import MonitorResult
from storage import prediction_samples
from storage.engine import Engine
from storage.monitor_results import window_results

VALUE_COLUMNS = ("confidence", "predicted_class")
DRIFT_MONITORS = (drift.MONITOR, class_shift.MONITOR)
FLAGGED = ("warn", "alert")  # statuses whose windows get a report from the scheduler
DEFAULT_MAX_ROWS = 200_000
# Evidently's interactive pages (about 4 MB each) are kept once per model version and window,
# under this folder of the reports root; the small per-key pages link to them.
EVIDENTLY_DIR = "evidently"
KEEP_PAGES = 288  # a key's newest window pages (a day at five-minute windows)
KEEP_EVIDENTLY = 24  # a model version's newest Evidently pages
TENANT_SEPARATOR = " · "


class ReportInputError(LookupError):
    """The report cannot be built from what the store holds (no rows, no reference)."""


@dataclass(frozen=True)
class ColumnDrift:
    """One Evidently ValueDrift test: its method, drift score and threshold."""

    method: str
    score: float
    threshold: float | None

    @property
    def detected(self) -> bool | None:
        """Evidently's call: drift when the score reaches the threshold (distance methods)."""
        return None if self.threshold is None else self.score >= self.threshold


@dataclass(frozen=True)
class Evidence:
    """Evidently's view of one model version's window against its reference."""

    model_name: str
    model_version: str
    window: Window
    reference: str  # "baseline" or "window"
    reference_window: Window | None
    current_rows: int
    reference_rows: int
    tenants: tuple[str, ...]  # tenants with a test of their own
    drift: Mapping[str, Mapping[str, ColumnDrift]]  # tenant ("*" = all) -> column -> test
    values: Mapping[str, Any]  # Evidently's metric name -> value
    html: str  # Evidently's interactive report


@dataclass(frozen=True)
class DriftReportSummary:
    path: Path
    evidently_path: Path
    model_name: str
    model_version: str
    current_rows: int
    reference_rows: int
    reference: str
    tenants: tuple[str, ...]
    values: Mapping[str, Any]
    verdicts: Mapping[str, Mapping[str, str]]  # tenant -> monitor -> status


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
    return pd.DataFrame({"tenant": ALL, "confidence": confidence, "predicted_class": classes})


def tenant_columns(frame: pd.DataFrame, tenants: tuple[str, ...], shared: bool) -> pd.DataFrame:
    """Confidence and class, overall and per tenant (`shared`: every tenant sees all rows).

    Evidently drops missing values column by column, so a tenant's column holds its rows and
    NaN elsewhere; the report then has one drift test per tenant and column.
    """
    columns: dict[str, pd.Series] = {c: frame[c] for c in VALUE_COLUMNS}
    for tenant in tenants:
        mask = pd.Series(True, index=frame.index) if shared else frame["tenant"] == tenant
        for column in VALUE_COLUMNS:
            columns[f"{column}{TENANT_SEPARATOR}{tenant}"] = frame[column].where(mask)
    return pd.DataFrame(columns)


def gather_evidence(
    engine: Engine,
    config: AppConfig,
    model_name: str,
    model_version: str,
    window: Window,
    *,
    reference_window: Window | None = None,
    baselines: BaselineStore | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Evidence:
    """Run Evidently's drift tests on the window's rows against the reference, per tenant."""
    current = window_frame(engine, model_name, model_version, window, max_rows)
    if current.empty:
        raise ReportInputError(
            f"no successful predictions of {model_name} {model_version} in the window"
        )
    reference, shared = _reference_rows(
        engine, model_name, model_version, reference_window, baselines, max_rows
    )
    tenants = tuple(sorted(set(current["tenant"])))
    if not shared:  # a tenant absent from the reference window has nothing to compare with
        tenants = tuple(t for t in tenants if t in set(reference["tenant"]))
    values, tests, page = _run_evidently(
        tenant_columns(current, tenants, shared=False),
        tenant_columns(reference, tenants, shared=shared),
        config,
    )
    return Evidence(
        model_name,
        model_version,
        window,
        "baseline" if shared else "window",
        reference_window,
        len(current),
        len(reference),
        tenants,
        tests,
        values,
        page,
    )


def _reference_rows(
    engine: Engine,
    model_name: str,
    model_version: str,
    reference_window: Window | None,
    baselines: BaselineStore | None,
    max_rows: int,
) -> tuple[pd.DataFrame, bool]:
    """The reference's rows, and whether every tenant shares them (a baseline)."""
    if reference_window is not None:
        reference = window_frame(engine, model_name, model_version, reference_window, max_rows)
        shared = False
    else:
        store = baselines or BaselineStore(engine)
        baseline = store.get(model_name, model_version)
        if baseline is None:
            reason = store.problems.get((model_name, model_version), "unavailable")
            raise ReportInputError(f"no baseline for {model_name} {model_version}: {reason}")
        reference, shared = baseline_frame(baseline, max_rows), True
    if reference.empty:
        raise ReportInputError(f"no reference predictions of {model_name} {model_version}")
    return reference, shared


def _run_evidently(
    current: pd.DataFrame, reference: pd.DataFrame, config: AppConfig
) -> tuple[dict[str, Any], dict[str, dict[str, ColumnDrift]], str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    numerical = [c for c in current.columns if c.startswith("confidence")]
    categorical = [c for c in current.columns if c.startswith("predicted_class")]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    # The same distances and warn levels as the monitors' Wasserstein and JS metrics.
    wasserstein = config.monitors.threshold(drift.MONITOR, "wasserstein_normalized")
    js = config.monitors.threshold(class_shift.MONITOR, "js_distance")
    metrics = [
        ValueDrift(
            column=c, method="wasserstein", threshold=wasserstein.warn if wasserstein else None
        )
        for c in numerical
    ] + [
        ValueDrift(column=c, method="jensenshannon", threshold=js.warn if js else None)
        for c in categorical
    ]
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    results = snapshot.dict()["metrics"]
    tests: dict[str, dict[str, ColumnDrift]] = {}
    for result in results:
        settings = result["config"]
        column, _, tenant = str(settings["column"]).partition(TENANT_SEPARATOR)
        threshold = settings.get("threshold")
        tests.setdefault(tenant or ALL, {})[column] = ColumnDrift(
            str(settings["method"]),
            float(result["value"]),
            None if threshold is None else float(threshold),
        )
    values = {r["metric_name"]: r["value"] for r in results}
    return values, tests, snapshot.get_html_str(as_iframe=False)


# --- Verdicts ---------------------------------------------------------------------------------


def worst(rows: Iterable[MonitorResult]) -> MonitorResult | None:
    """The row with the worst status (alert > warn > ok > insufficient_data)."""
    return max(rows, key=lambda r: STATUS_CODES[r.status], default=None)


def verdict_table(
    verdicts: Sequence[MonitorResult], tenants: Iterable[str]
) -> dict[str, dict[str, list[MonitorResult]]]:
    """tenant -> monitor -> its rows, all tenants first, for every tenant in either source."""
    names = sorted({*tenants, *(r.tenant for r in verdicts)} - {ALL})
    table: dict[str, dict[str, list[MonitorResult]]] = {}
    for tenant in (ALL, *names):
        table[tenant] = {
            monitor: [r for r in verdicts if r.tenant == tenant and r.monitor == monitor]
            for monitor in DRIFT_MONITORS
        }
    return table


def render_page(
    evidence: Evidence,
    verdicts: Sequence[MonitorResult],
    focus: tuple[str, str] | None,
    evidently_href: str,
    generated_at: datetime,
) -> str:
    """The report page; `focus` (monitor, tenant) is the key it was written for, if any."""
    table = verdict_table(verdicts, evidence.tenants)
    who = "all tenants" if focus is None else _tenant_name(focus[1])
    title = f"Drift report: {evidence.model_name} {evidence.model_version}, {who}"
    parts = [
        f"<h1>{_e(title)}</h1>",
        _facts(evidence, generated_at),
        "" if focus is None else _headline(focus, table.get(focus[1], {}).get(focus[0], [])),
        "<h2>Verdict per tenant</h2>",
        "<p>servewatch's decision is the status of each monitor's rows for this window (the "
        "worst of its metrics): what the alerts fire on. Evidently's tests on the same rows are "
        "supporting detail: a distance at or above its threshold is marked drifted.</p>",
        _tenant_table(table, evidence),
    ]
    if focus is not None:
        parts += [
            f"<h2>Metrics for {_e(_tenant_name(focus[1]))}</h2>",
            _metric_table(table.get(focus[1], {})),
        ]
    parts += [
        "<h2>Evidently</h2>",
        f"<p>{evidence.current_rows} rows of the window against {evidence.reference_rows} "
        f"reference rows. <a href='{_e(evidently_href)}'>Evidently's interactive report</a> "
        "(one test per tenant and column).</p>",
    ]
    return _document(title, "\n".join(p for p in parts if p))


def _facts(evidence: Evidence, generated_at: datetime) -> str:
    window = evidence.window
    if evidence.reference_window is not None:
        reference = (
            f"the reference window {iso_utc(evidence.reference_window.start)} .. "
            f"{iso_utc(evidence.reference_window.end)}, tenant by tenant"
        )
    else:
        reference = f"the registered baseline of {evidence.model_version}, for every tenant"
    rows = [
        ("Model", evidence.model_name),
        ("Version", evidence.model_version),
        ("Window", f"{iso_utc(window.start)} .. {iso_utc(window.end)}"),
        ("Reference", reference),
        ("Written", iso_utc(generated_at)),
    ]
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class='facts'>{cells}</table>"


def _headline(focus: tuple[str, str], rows: Sequence[MonitorResult]) -> str:
    monitor, tenant = focus
    top = worst(rows)
    if top is None:
        return f"<p class='verdict'>No {_e(monitor)} rows for {_e(_tenant_name(tenant))}.</p>"
    crossed = [r for r in rows if r.status == top.status and r.value is not None]
    because = ", ".join(
        f"{r.metric} {_number(r.value)} (threshold {_number(r.threshold)})" for r in crossed
    )
    return (
        f"<p class='verdict {top.status}'>servewatch verdict for {_e(_tenant_name(tenant))}, "
        f"{_e(monitor)}: <strong>{_e(top.status)}</strong>"
        f"{': ' + _e(because) if because else ''} on {top.n} predictions.</p>"
    )


def _tenant_table(
    table: Mapping[str, Mapping[str, Sequence[MonitorResult]]], evidence: Evidence
) -> str:
    head = "".join(f"<th>servewatch: {_e(m)}</th>" for m in DRIFT_MONITORS)
    head += "".join(f"<th>Evidently: {_e(c)}</th>" for c in VALUE_COLUMNS)
    body = []
    for tenant, monitors in table.items():
        cells = [f"<th>{_e(_tenant_name(tenant))}</th>"]
        cells += [_status_cell(monitors.get(m, [])) for m in DRIFT_MONITORS]
        tests = evidence.drift.get(tenant, {})
        cells += [_evidently_cell(tests.get(c)) for c in VALUE_COLUMNS]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr><th>tenant</th>{head}</tr>{''.join(body)}</table>"


def _status_cell(rows: Sequence[MonitorResult]) -> str:
    top = worst(rows)
    if top is None:
        return "<td class='none'>no rows for this window</td>"
    return f"<td class='{top.status}'>{_e(top.status)} (n = {top.n})</td>"


def _evidently_cell(test: ColumnDrift | None) -> str:
    if test is None:
        return "<td class='none'>no test</td>"
    called = {True: "drifted", False: "not drifted", None: "no threshold"}[test.detected]
    threshold = "" if test.threshold is None else f" / {_number(test.threshold)}"
    return f"<td>{_e(called)}: {_e(test.method)} {_number(test.score)}{threshold}</td>"


def _metric_table(monitors: Mapping[str, Sequence[MonitorResult]]) -> str:
    body = []
    for monitor in DRIFT_MONITORS:
        for r in monitors.get(monitor, []):
            reason = str(r.details.get("reason") or "")
            body.append(
                f"<tr><td>{_e(monitor)}</td><td>{_e(r.metric)}</td><td>{_number(r.value)}</td>"
                f"<td>{_number(r.threshold)}</td><td class='{r.status}'>{_e(r.status)}</td>"
                f"<td>{r.n}</td><td>{_e(reason)}</td></tr>"
            )
    head = "<tr><th>monitor</th><th>metric</th><th>value</th><th>threshold</th><th>status</th>"
    return f"<table>{head}<th>n</th><th>reason</th></tr>{''.join(body)}</table>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }
.alert { background: #fbd5d5; } .warn { background: #fdf0c4; } .ok { background: #dcf3dc; }
.insufficient_data, .none { color: #777; }
p.verdict { font-size: 1.2rem; padding: 0.6rem; }
"""


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _tenant_name(tenant: str) -> str:
    return "all tenants (*)" if tenant == ALL else f"tenant {tenant}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- Writing reports --------------------------------------------------------------------------


def stored_verdicts(
    engine: Engine, window: Window, model_name: str, model_version: str
) -> list[MonitorResult]:
    """The drift monitors' stored rows of one model version for exactly this window."""
    rows = window_results(
        engine, window.start, window.end, model_name, model_version, DRIFT_MONITORS
    )
    return [MonitorResult.from_row(row) for row in rows]


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
    now: datetime | None = None,
) -> DriftReportSummary:
    """Write the report of one model version's window to `out`, Evidently's page beside it.

    The verdicts are the drift monitors' stored rows for the window, or (none stored) the rows
    a run of those monitors gives now, unstored.
    """
    version = model_version or busiest_version(engine, model_name, window)
    if version is None:
        raise ReportInputError(
            f"no successful predictions of {model_name!r} between "
            f"{window.start.isoformat()} and {window.end.isoformat()}"
        )
    store = baselines or BaselineStore(engine)
    evidence = gather_evidence(
        engine,
        config,
        model_name,
        version,
        window,
        reference_window=reference_window,
        baselines=store,
        max_rows=max_rows,
    )
    verdicts = stored_verdicts(engine, window, model_name, version) or _computed_verdicts(
        engine, config, window, model_name, version, reference_window, store
    )
    evidently_path = out.with_name(f"{out.stem}.evidently.html")
    write_atomically(evidently_path, evidence.html)
    page = render_page(evidence, verdicts, None, evidently_path.name, now or datetime.now(UTC))
    write_atomically(out, page)
    table = verdict_table(verdicts, evidence.tenants)
    return DriftReportSummary(
        out,
        evidently_path,
        model_name,
        version,
        evidence.current_rows,
        evidence.reference_rows,
        evidence.reference,
        evidence.tenants,
        evidence.values,
        {
            tenant: {m: top.status for m, rows in monitors.items() if (top := worst(rows))}
            for tenant, monitors in table.items()
        },
    )


def _computed_verdicts(
    engine: Engine,
    config: AppConfig,
    window: Window,
    model_name: str,
    model_version: str,
    reference_window: Window | None,
    baselines: BaselineStore,
) -> list[MonitorResult]:
    from monitors.runner import run_monitors

    outcome = run_monitors(
        engine,
        window,
        config,
        reference_window=reference_window,
        model_name=model_name,
        monitors=DRIFT_MONITORS,
        baselines=baselines,
    )
    return [r for r in outcome.results if r.model_version == model_version]


def flagged_keys(results: Iterable[MonitorResult]) -> list[tuple[str, str, str, str]]:
    """(monitor, model, version, tenant) of the drift rows at warn or alert."""
    return sorted(
        {
            (r.monitor, r.model_name, r.model_version, r.tenant)
            for r in results
            if r.monitor in DRIFT_MONITORS and r.status in FLAGGED
        }
    )


def write_window_reports(
    engine: Engine,
    config: AppConfig,
    results: Sequence[MonitorResult],
    window: Window,
    reports_dir: Path,
    *,
    baselines: BaselineStore | None = None,
    max_rows: int = 50_000,
    now: datetime | None = None,
) -> list[Path]:
    """The report of every drift key at warn or alert in `results` (rows of one window).

    Each key gets `<reports_dir>/<report_path>/<window file>` and `latest.html` beside it;
    Evidently runs once per model version. Verdicts of a drift monitor absent from `results`
    come from the store when it has the same window. Returns the pages written.
    """
    by_version: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for monitor, model, version, tenant in flagged_keys(results):
        by_version.setdefault((model, version), []).append((monitor, tenant))
    written: list[Path] = []
    for (model, version), keys in by_version.items():
        evidence = gather_evidence(
            engine, config, model, version, window, baselines=baselines, max_rows=max_rows
        )
        verdicts = _merged(stored_verdicts(engine, window, model, version), results, model, version)
        folder = reports_dir / EVIDENTLY_DIR / path_part(model) / path_part(version)
        evidently_page = write_atomically(folder / window_file(window.end), evidence.html)
        prune(folder, KEEP_EVIDENTLY)
        for monitor, tenant in keys:
            key_dir = reports_dir / report_path(monitor, model, version, tenant)
            href = Path(os.path.relpath(evidently_page, key_dir)).as_posix()
            page = render_page(
                evidence, verdicts, (monitor, tenant), href, now or datetime.now(UTC)
            )
            written.append(write_atomically(key_dir / window_file(window.end), page))
            write_atomically(key_dir / LATEST, page)
            prune(key_dir, KEEP_PAGES)
    return written


def _merged(
    stored: Sequence[MonitorResult], results: Sequence[MonitorResult], model: str, version: str
) -> list[MonitorResult]:
    """Stored rows with this run's rows in place of theirs (the run is the newest word)."""
    rows = {r.key: r for r in stored}
    rows.update({r.key: r for r in results if (r.model_name, r.model_version) == (model, version)})
    return list(rows.values())


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` window pages of `folder` (names sort by time)."""
    pages = sorted(p for p in folder.glob("*.html") if p.name != LATEST)
    for old in pages[:-keep] if keep > 0 else pages:
        old.unlink(missing_ok=True)
