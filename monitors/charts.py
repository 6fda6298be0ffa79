"""PNG charts for the reports (FinOps, replay): one figure size, one way to render."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes, without a software stamp (the same figure, the same bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def new_figure(height: float = 3.2) -> Figure:
    """A report-wide figure `height` inches tall."""
    # matplotlib loads only when a report is drawn, not whenever the CLI starts.
    from matplotlib.figure import Figure

    return Figure(figsize=(9.0, height), layout="constrained")
