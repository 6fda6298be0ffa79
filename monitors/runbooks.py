"""docs/runbooks.md as an HTML page whose headings carry ids: `#<alert name lowercased>`.

Every alert's `runbook_url` is `<alerting.runbook_base_url>#<alertname lowercased>`; the
monitors process serves this page at /runbooks, so the link lands on the alert's section.
"""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

from markdown_it import MarkdownIt

# Where the runbooks are in a checkout and in the image (the Dockerfile copies docs/).
RUNBOOKS_FILE = Path(__file__).resolve().parents[1] / "docs" / "runbooks.md"

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222;
       line-height: 1.45; padding: 0 1rem; }
code { background: #f3f3f3; padding: 0 0.2rem; }
h2 { border-top: 1px solid #ddd; padding-top: 1rem; }
h2:target { background: #fdf0c4; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; }
"""


def anchor(heading: str) -> str:
    """A heading's id: lowercased, runs of other characters than letters, digits, `_` and `-`
    become one `-` (an alert name such as ServewatchClassShift -> servewatchclassshift)."""
    return re.sub(r"[^a-z0-9_-]+", "-", heading.strip().lower()).strip("-")


def render_runbooks(markdown: str) -> str:
    """The runbooks as a standalone HTML page, every heading with its `anchor` as id."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(markdown)
    title = "servewatch runbooks"
    for opening, inline in itertools.pairwise(tokens):
        if opening.type == "heading_open":
            opening.attrSet("id", anchor(inline.content))
            if opening.tag == "h1":
                title = inline.content
    body = parser.renderer.render(tokens, parser.options, {})
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}</body></html>\n"
    )
