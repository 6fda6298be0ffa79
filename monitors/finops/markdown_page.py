"""The report in Markdown: the HTML's sections, tables as GitHub pipe tables, no charts."""

from __future__ import annotations

from monitors.finops.figures import WeeklyFigures
from monitors.finops.sections import report_stem, sections, span
from monitors.finops.tables import Table


def render_markdown(figures: WeeklyFigures) -> str:
    """The same sections as the HTML, tables as GitHub pipe tables, without the charts."""
    f = figures
    lines = [
        f"# FinOps report {f.week.label}",
        "",
        f"{span(f.week)} (UTC). Charts are in {report_stem(f.week)}.html.",
        "",
        "## Summary",
        "",
        *[f"- {line}" for line in f.summary],
    ]
    for section in sections(f, {}):
        lines.extend(["", f"## {section.title}"])
        for paragraph in section.paragraphs:
            lines.extend(["", paragraph])
        for table in section.tables:
            lines.extend(["", *_markdown_table(table)])
    return "\n".join(lines).rstrip() + "\n"


def _markdown_table(table: Table) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c.heading) for c in table.columns) + " |"
    rule = "|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|"
    body = [
        "| " + " | ".join(cell(c.show(record[c.key])) for c in table.columns) + " |"
        for record in table.frame.to_dict("records")
    ]
    return [header, rule, *body]
