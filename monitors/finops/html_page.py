"""The report as one self-contained HTML page: inline style, charts as data URIs."""

from __future__ import annotations

import base64
import html
from datetime import datetime

from monitors.finops.figures import WeeklyFigures, usd
from monitors.finops.sections import sections, span
from monitors.finops.tables import Table, fine_money, pct, signed_pct

STYLE = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}.meta{color:#666;margin:0 0 16px}
.summary{background:#eef4fb;border-left:4px solid #2f6db5;padding:10px 18px;margin:16px 0}
.summary li{margin:4px 0}.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.kpi{flex:1 1 150px;border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px}
.kpi b{display:block;font-size:21px}.kpi span{color:#666;font-size:13px}
table{border-collapse:collapse;width:100%;margin:10px 0;font-size:13.5px}
th,td{padding:5px 8px;border-bottom:1px solid #eee;text-align:left}
th{background:#fafafa;font-weight:600}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;display:block;margin:10px 0}
tr.flagged td{background:#fdecea}p{margin:8px 0}
"""

# Marks the body once every image has loaded, so a headless browser can check the report.
IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.dataset.imagesLoaded = ok.length + "/" + images.length;
});
"""


def render_html(figures: WeeklyFigures, charts: dict[str, bytes], generated: datetime) -> str:
    """A self-contained page: inline style, charts as base64 PNG data URIs."""
    f = figures
    week = f.week
    title = f"FinOps report {week.label}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{span(week)} (UTC) · generated {generated:%Y-%m-%d %H:%M} UTC</p>',
        '<section id="summary"><h2>Summary</h2>',
        _kpis(f),
        '<ul class="summary">',
        *[f"<li>{_e(line)}</li>" for line in f.summary],
        "</ul></section>",
    ]
    for section in sections(f, charts):
        parts.append(f'<section id="{section.anchor}"><h2>{_e(section.title)}</h2>')
        parts.extend(f"<p>{_e(p)}</p>" for p in section.paragraphs)
        for name in section.charts:
            parts.append(_image(name, charts[name]))
        parts.extend(_html_table(table) for table in section.tables)
        parts.append("</section>")
    parts.append(f"</main><script>{IMAGE_CHECK}</script></body></html>")
    return "\n".join(parts) + "\n"


def _kpis(f: WeeklyFigures) -> str:
    per_1k = f.usage.current / f.predictions.current * 1000 if f.predictions.current else None
    cards = [
        (usd(f.spend.current), f"total spend ({signed_pct(f.spend.pct)} w/w)"),
        (usd(f.usage.current), "usage cost"),
        (usd(f.idle.idle_usd), f"idle ({pct(f.idle.idle_pct)} of capacity)"),
        (f"{int(f.predictions.current):,}", "predictions"),
        (fine_money(per_1k), "usage per 1k predictions"),
    ]
    inner = "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
    return f'<div class="kpis">{inner}</div>'


def _image(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="chart-{name}" alt="{_e(name)} chart" src="data:image/png;base64,{data}">'


def _html_table(table: Table) -> str:
    head = "".join(
        f'<th class="{"num" if c.numeric else ""}">{_e(c.heading)}</th>' for c in table.columns
    )
    rows = []
    for record in table.frame.to_dict("records"):
        cells = "".join(
            f'<td class="{"num" if c.numeric else ""}">{_e(c.show(record[c.key]))}</td>'
            for c in table.columns
        )
        flagged = ' class="flagged"' if record.get("flagged") else ""
        rows.append(f"<tr{flagged}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
