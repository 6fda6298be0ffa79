"""Rows of panels onto Grafana's 24-column grid: each panel as high, then as left, as it fits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import attr
from grafanalib import core

from dashboards.panels import Sized

GRID_WIDTH = 24


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Sized]
    # A template variable: Grafana repeats the row and its panels once per selected value.
    repeat: str | None = None


def place(skyline: list[int], width: int) -> tuple[int, int]:
    """(x, y) of the highest, then leftmost, slot `width` columns wide on the skyline."""
    slots = [(max(skyline[x : x + width]), x) for x in range(GRID_WIDTH - width + 1)]
    y, x = min(slots)
    return x, y


def layout(rows: Sequence[Row]) -> list[core.Panel]:
    """Row headers and their panels with grid positions (rows expanded, panels flat)."""
    placed: list[core.Panel] = []
    top = 0
    for row in rows:
        placed.append(
            core.RowPanel(
                title=row.title,
                gridPos=core.GridPos(h=1, w=24, x=0, y=top),
                repeat=core.Repeat(variable=row.repeat),
            )
        )
        skyline = [top + 1] * GRID_WIDTH
        for sized in row.panels:
            x, y = place(skyline, sized.width)
            position = core.GridPos(h=sized.height, w=sized.width, x=x, y=y)
            placed.append(attr.evolve(sized.panel, gridPos=position))
            skyline[x : x + sized.width] = [y + sized.height] * sized.width
        top = max(skyline)
    return placed
