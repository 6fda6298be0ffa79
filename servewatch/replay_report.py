"""A replay's report: JSON, and one self-contained HTML page with its charts as PNG data URIs."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.contracts import ALL
from core.files import write_atomically
from core.timeutil import iso_utc
from monitors.charts import new_figure, png
from monitors.replay_compare import SIDES, Comparison
from servewatch.replay import ReplayOutcome

if TYPE_CHECKING:
    from matplotlib.figure import Figure

JSON_FILE, HTML_FILE = "replay.json", "replay.html"
COLOURS = {"baseline": "#2f6db5", "candidate": "#e08a1e"}
LABELS = {"baseline": "answering version", "candidate": "candidate"}
STYLE = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
margin:0;background:#f6f7f9}main{max-width:980px;margin:0 auto;padding:24px 28px 48px;
background:#fff}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:1px solid #ddd}.meta{color:#666}table{border-collapse:collapse;width:100%;
margin:10px 0;font-size:13.5px}th,td{padding:5px 8px;border-bottom:1px solid #eee;
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fdecea}img{max-width:100%;display:block;margin:10px 0}
"""


def write_report(outcome: ReplayOutcome, out_dir: Path) -> dict[str, Path]:
    """Write replay.json and replay.html under `out_dir`; their paths by format."""
    document = json.dumps(outcome.as_json(), indent=2, sort_keys=False) + "\n"
    page = render_html(outcome, render_charts(outcome.comparisons))
    return {
        "json": write_atomically(out_dir / JSON_FILE, document),
        "html": write_atomically(out_dir / HTML_FILE, page),
    }


def render_charts(comparisons: dict[str, Comparison]) -> dict[str, bytes]:
    """PNG charts by name; left out when there is nothing to draw."""
    overall = comparisons[ALL]
    if overall.n == 0:
        return {}
    charts = {
        "classes": png(_class_chart(overall)),
        "agreement": png(_agreement_chart(comparisons)),
        "latency": png(_latency_chart(comparisons)),
    }
    if overall.confusion:
        charts["confusion"] = png(_confusion_chart(overall))
    if all(overall.confidences.get(side) for side in SIDES):
        charts["confidence"] = png(_confidence_chart(overall))
    return charts


def render_html(outcome: ReplayOutcome, charts: dict[str, bytes]) -> str:
    """The page: verdict, gates, per-tenant table, confusion and charts."""
    r = outcome.request
    title = f"Replay of {r.model_name}:{r.candidate_version}"
    verdict = "passed" if outcome.passed else "FAILED"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(iso_utc(r.since))} – {_e(iso_utc(r.until))}'
        f" · tenant {_e(r.tenant or 'all')} · generated {_e(iso_utc(outcome.generated_at))}</p>",
        f"<p><b>Gates {verdict}.</b> {outcome.replayed} items replayed against the answering "
        f"versions {_e(_versions(outcome))}; skipped: {_e(_skipped(outcome))}.</p>",
        "<h2>Gates</h2>",
        _gates_table(outcome),
        "<h2>Per tenant</h2>",
        _tenant_table(outcome.comparisons),
        "<h2>Confusion (answering version × candidate)</h2>",
        _confusion_table(outcome.comparisons[ALL]),
    ]
    titles = {
        "agreement": "Agreement per tenant (95 % interval)",
        "confusion": "Confusion",
        "classes": "Class shares",
        "confidence": "Confidence",
        "latency": "Inference latency per item",
    }
    for name, title_text in titles.items():
        if name in charts:
            data = base64.b64encode(charts[name]).decode("ascii")
            parts.append(f"<h2>{_e(title_text)}</h2>")
            parts.append(f'<img alt="{_e(title_text)}" src="data:image/png;base64,{data}">')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _versions(outcome: ReplayOutcome) -> str:
    found = outcome.answering_versions
    return ", ".join(f"{v} ({n})" for v, n in found.items()) or "none"


def _skipped(outcome: ReplayOutcome) -> str:
    return ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in outcome.skipped.items())


def _gates_table(outcome: ReplayOutcome) -> str:
    if not outcome.gates:
        return "<p>No gates are configured (<code>replay.gates</code>).</p>"
    rows = [
        _row(
            [g.gate, _number(g.value), _number(g.limit), str(g.n), g.status],
            failed=not g.passed,
        )
        for g in outcome.gates
    ]
    return _table(["Gate", "Value", "Limit", "Items", "Status"], rows)


def _tenant_table(comparisons: dict[str, Comparison]) -> str:
    rows = []
    for key, c in comparisons.items():
        psi = None if c.class_shift is None else c.class_shift["psi"].value
        conf = None if c.confidence_drift is None else c.confidence_drift["psi"].value
        rows.append(
            _row(
                [
                    _tenant(key),
                    str(c.n),
                    _number(c.agreement),
                    _number(c.schema_failure_rate),
                    _number(psi),
                    _number(conf),
                    _number(c.latency_ms["baseline"].get("p95")),
                    _number(c.latency_ms["candidate"].get("p95")),
                ]
            )
        )
    header = [
        "Tenant",
        "Items",
        "Agreement",
        "Schema failures",
        "Class PSI",
        "Confidence PSI",
        "p95 ms (answering)",
        "p95 ms (candidate)",
    ]
    return _table(header, rows)


def _confusion_table(c: Comparison) -> str:
    columns = sorted({col for row in c.confusion.values() for col in row})
    rows = [
        _row([name, *(str(c.confusion[name].get(col, 0)) for col in columns)])
        for name in sorted(c.confusion)
    ]
    return _table(["answering \\ candidate", *columns], rows) if rows else "<p>No items.</p>"


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _row(cells: list[str], failed: bool = False) -> str:
    body = "".join(f"<td>{_e(cell)}</td>" for cell in cells)
    return f'<tr class="failed">{body}</tr>' if failed else f"<tr>{body}</tr>"


def _tenant(key: str) -> str:
    return "all tenants" if key == ALL else key


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _confusion_chart(c: Comparison) -> Figure:
    rows = sorted(c.confusion)
    columns = sorted({col for row in c.confusion.values() for col in row})
    table = np.array([[c.confusion[r].get(col, 0) for col in columns] for r in rows], dtype=float)
    figure = new_figure(0.5 * len(rows) + 1.8)
    axis = figure.add_subplot()
    axis.imshow(table, cmap="Blues", aspect="auto")
    axis.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    axis.set_yticks(range(len(rows)), rows)
    axis.set_xlabel("candidate")
    axis.set_ylabel("answering version")
    for (i, j), count in np.ndenumerate(table):
        axis.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=9)
    return figure


def _class_chart(c: Comparison) -> Figure:
    names = sorted(set(c.class_counts["baseline"]) | set(c.class_counts["candidate"]))
    figure = new_figure()
    axis = figure.add_subplot()
    positions = np.arange(len(names))
    for offset, side in zip((-0.2, 0.2), SIDES, strict=True):
        counts = np.array([c.class_counts[side].get(n, 0) for n in names], dtype=float)
        shares = counts / counts.sum() if counts.sum() else counts
        axis.bar(positions + offset, shares, 0.4, color=COLOURS[side], label=LABELS[side])
    axis.set_xticks(positions, names)
    axis.set_ylabel("share of items")
    axis.legend()
    return figure


def _confidence_chart(c: Comparison) -> Figure:
    figure = new_figure()
    axis = figure.add_subplot()
    bins = [i / 40 for i in range(41)]
    for side in SIDES:
        axis.hist(
            c.confidences[side], bins=bins, alpha=0.55, color=COLOURS[side], label=LABELS[side]
        )
    axis.set_xlabel("confidence")
    axis.set_ylabel("items")
    axis.legend()
    return figure


def _agreement_chart(comparisons: dict[str, Comparison]) -> Figure:
    keys = [k for k, c in comparisons.items() if c.agreement is not None]
    figure = new_figure()
    axis = figure.add_subplot()
    values = [comparisons[k].agreement or 0.0 for k in keys]
    errors = _interval_errors([comparisons[k] for k in keys])
    axis.bar([_tenant(k) for k in keys], values, color=COLOURS["candidate"], yerr=errors, capsize=4)
    axis.set_ylim(0.0, 1.05)
    axis.set_ylabel("agreement")
    return figure


def _interval_errors(comparisons: list[Comparison]) -> Any:
    low, high = [], []
    for c in comparisons:
        interval = c.agreement_interval or (0.0, 0.0)
        value = c.agreement or 0.0
        low.append(max(value - interval[0], 0.0))
        high.append(max(interval[1] - value, 0.0))
    return np.array([low, high])


def _latency_chart(comparisons: dict[str, Comparison]) -> Figure:
    keys = list(comparisons)
    figure = new_figure()
    axis = figure.add_subplot()
    positions = np.arange(len(keys))
    for offset, side in zip((-0.2, 0.2), SIDES, strict=True):
        p95 = [comparisons[k].latency_ms[side].get("p95", 0.0) for k in keys]
        axis.bar(positions + offset, p95, 0.4, color=COLOURS[side], label=f"{LABELS[side]} p95")
    axis.set_xticks(positions, [_tenant(k) for k in keys])
    axis.set_ylabel("ms per item")
    axis.legend()
    return figure
