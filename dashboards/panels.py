"""Panel builders on grafanalib: every panel states its unit and a description."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib import core

from dashboards.datasources import postgres, prometheus

Steps = Sequence[tuple[str, float | None]]
BASE = (("green", None),)
Links = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"


@dataclass(frozen=True)
class Sized:
    """A panel and the grid cells it wants; the layout gives it a position."""

    panel: core.Panel
    width: int = 12
    height: int = 8


def steps(pairs: Steps) -> list[dict[str, Any]]:
    """Threshold steps from (color, value) pairs; the first value is None (-Infinity)."""
    return [{"color": color, "value": value} for color, value in pairs]


def targets(queries: Sequence[Query]) -> list[core.Target]:
    return [
        core.Target(
            expr=q.expr,
            legendFormat=q.legend,
            refId=chr(ord("A") + index),
            instant=q.instant,
            format=q.format,
            datasource=prometheus(),
        )
        for index, q in enumerate(queries)
    ]


def timeseries(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 12,
    stack: bool = False,
    thresholds: Steps = BASE,
    draw_thresholds: bool = False,
    min_value: int = 0,
    max_value: int | None = None,
    legend_calcs: Sequence[str] = (),
    mappings: Sequence[Mapping[str, Any]] = (),
    steps_after: bool = False,
    links: Links = (),
) -> Sized:
    """Lines over time; stacked areas when `stack`; thresholds as dashed lines when drawn;
    steps instead of slopes for values that hold until the next (statuses)."""
    panel = core.TimeSeries(
        title=title,
        description=description,
        unit=unit,
        dataSource=prometheus(),
        targets=targets(queries),
        links=list(links),
        maxDataPoints=None,
        fillOpacity=35 if stack else 10,
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none", "group": "A"},
        thresholds=steps(thresholds),
        thresholdsStyleMode="dashed" if draw_thresholds else "off",
        valueMin=min_value,
        valueMax=max_value,
        mappings=list(mappings),
        lineInterpolation="stepAfter" if steps_after else "linear",
        legendDisplayMode="table" if legend_calcs else "list",
        legendCalcs=list(legend_calcs),
        tooltipMode="multi",
        tooltipSort="desc",
        showPoints="never",
    )
    return Sized(panel, width)


def stat(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 6,
    thresholds: Steps = BASE,
    mappings: Sequence[Mapping[str, Any]] = (),
    calc: str = "lastNotNull",
    no_value: str | None = None,
    text_mode: str = "auto",
    height: int = 4,
    links: Links = (),
) -> Sized:
    """Big numbers coloured by thresholds (one per series)."""
    panel = core.Stat(
        title=title,
        description=description,
        format=unit,
        dataSource=prometheus(),
        targets=targets(queries),
        links=list(links),
        maxDataPoints=None,
        thresholds=steps(thresholds),
        mappings=list(mappings),
        reduceCalc=calc,
        colorMode="background",
        graphMode="none",
        textMode=text_mode,
        noValue=no_value,
    )
    return Sized(panel, width, height)


def piechart(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 6,
    links: Links = (),
) -> Sized:
    """Shares of a whole at the end of the range."""
    panel = core.PieChartv2(
        title=title,
        description=description,
        unit=unit,
        dataSource=prometheus(),
        targets=targets(queries),
        links=list(links),
        maxDataPoints=None,
        pieType="donut",
        legendDisplayMode="table",
        legendPlacement="right",
        legendValues=["value", "percent"],
        reduceOptionsCalcs=["lastNotNull"],
    )
    return Sized(panel, width)


def heatmap(
    title: str, description: str, unit: str, y_unit: str, query: Query, *, width: int = 12
) -> Sized:
    """Histogram buckets over time (Prometheus `le` buckets, counted per cell)."""
    options = {
        "calculate": False,
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "fill": "dark-orange",
            "scale": "exponential",
            "exponent": 0.5,
            "steps": 64,
            "reverse": False,
        },
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
        "yAxis": {"axisPlacement": "left", "unit": y_unit, "reverse": False},
        "cellValues": {"unit": unit},
    }
    panel = core.Heatmap(
        title=title,
        description=description,
        dataSource=prometheus(),
        targets=targets([query]),
        maxDataPoints=None,
        options=options,
        extraJson={
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False}},
                }
            }
        },
    )
    return Sized(panel, width, 9)


def sql_table(title: str, description: str, sql: str, *, width: int = 24) -> Sized:
    """Rows straight from the prediction store."""
    target = core.SqlTarget(rawSql=sql, format="table", refId="A", datasource=postgres())
    panel = core.Table(
        title=title,
        description=description,
        unit="none",
        dataSource=postgres(),
        targets=[target],
        maxDataPoints=None,
        filterable=True,
    )
    return Sized(panel, width, 9)
