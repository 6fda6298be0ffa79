"""Drift detection on simulated traffic: false alarms and detection delay, servewatch beside
Evidently's default drift tests on the same windows.

One key's traffic is simulated as in tests/monitors/simulation.py (ticket-classifier-like
confidences, five classes). For each reference source (a registered baseline of 10,000
validation predictions; the old 1,000-row baseline; a 24-hour reference window of the same
traffic) and window size (predictions per key and window):

- false alarms: stationary windows (no shift at all) at `warn` or above and at `alert`, for
  servewatch's verdict (effect floor and two-sample test, one key judged: no Bonferroni
  relief), for the thresholds alone (the verdict before issue 17) and for Evidently's default
  drift test of the column (`ValueDrift`'s default: KS / chi-square p < 0.05 when the reference
  has at most 1,000 rows, else Wasserstein (normed) / Jensen-Shannon >= 0.1);
- detection delay: after a persistent shift (class shares moved to a population PSI of 0.1,
  0.25, 0.4; mean confidence dropped by 0.02, 0.05, 0.1), windows until the first `warn` and
  the first `alert` (servewatch judging 20 keys per run) and until Evidently detects drift.

Evidently's decision is its registry's default stat test called on the raw values, the same
function its `ValueDrift` metric calls; the bench checks that against the `Report` API on the
first window of each cell. Prints the tables (rich) and writes them as Markdown and JSON.

    .venv/bin/python bench/bench_detection.py                   # the default run (minutes)
    .venv/bin/python bench/bench_detection.py --windows 2000 --sequences 200 \\
        --evidently-windows 500 --evidently-sequences 50          # tighter figures
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from core.config import MonitorsConfig  # noqa: E402
from core.contracts import Status  # noqa: E402
from core.files import write_atomically  # noqa: E402
from monitors.class_shift import MONITOR as CLASS_SHIFT  # noqa: E402
from monitors.drift import MONITOR as CONFIDENCE_DRIFT  # noqa: E402
from tests.monitors.simulation import (  # noqa: E402
    CLASSES,
    Population,
    Reference,
    Scenario,
    verdicts,
)

SIZES = (100, 300, 1000, 3000)
# Label -> (Scenario source, baseline rows).
SOURCES: dict[str, tuple[str, int]] = {
    "baseline 10k": ("baseline", 10_000),
    "baseline 1k": ("baseline", 1_000),
    "window 24h": ("window", 0),
}
DELAY_SOURCES = ("baseline 10k", "window 24h")
COLUMNS = {CONFIDENCE_DRIFT: "confidence", CLASS_SHIFT: "predicted_class"}
BUSY_RUN_KEYS = 20
MAX_WINDOWS = 6  # a shift not detected within this many windows counts as missed


@dataclass(frozen=True)
class Shift:
    name: str
    monitor: str
    make: Callable[[Population], Population]


SHIFTS = (
    Shift("class PSI 0.1", CLASS_SHIFT, lambda p: p.with_class_psi(0.1)),
    Shift("class PSI 0.25", CLASS_SHIFT, lambda p: p.with_class_psi(0.25)),
    Shift("class PSI 0.4", CLASS_SHIFT, lambda p: p.with_class_psi(0.4)),
    Shift("mean drop 0.02", CONFIDENCE_DRIFT, lambda p: p.with_mean_drop(0.02)),
    Shift("mean drop 0.05", CONFIDENCE_DRIFT, lambda p: p.with_mean_drop(0.05)),
    Shift("mean drop 0.1", CONFIDENCE_DRIFT, lambda p: p.with_mean_drop(0.1)),
)


class Evidently:
    """Evidently's default drift test of one column, reference series cached per reference."""

    def __init__(self) -> None:
        from evidently.legacy.calculations.stattests.registry import get_stattest
        from evidently.legacy.core import ColumnType

        self._get_stattest, self._types = get_stattest, ColumnType
        self._series: dict[int, dict[str, pd.Series]] = {}
        self.checked = 0

    def _reference(self, reference: Reference) -> dict[str, pd.Series]:
        key = id(reference)
        if key not in self._series:
            self._series = {key: frame_columns(reference.values, reference.class_counts)}
        return self._series[key]

    def drifted(
        self,
        reference: Reference,
        values: np.ndarray,
        counts: Mapping[str, float],
        monitor: str,
        check: bool = False,
    ) -> bool:
        column = COLUMNS[monitor]
        ref = self._reference(reference)[column]
        cur = frame_columns(values, counts)[column]
        kind = self._types.Numerical if monitor == CONFIDENCE_DRIFT else self._types.Categorical
        test = self._get_stattest(ref, cur, kind, None)
        drifted = bool(test(ref, cur, kind, None).drifted)
        if check:
            assert report_drifted(ref, cur, column) == drifted, "Report API disagrees"
            self.checked += 1
        return drifted


def frame_columns(values: np.ndarray, counts: Mapping[str, float]) -> dict[str, pd.Series]:
    """Raw columns: the confidences, and class labels repeated by their counts."""
    labels = np.repeat(np.array(CLASSES, dtype=object), [int(counts[c]) for c in CLASSES])
    return {"confidence": pd.Series(values), "predicted_class": pd.Series(labels)}


def report_drifted(reference: pd.Series, current: pd.Series, column: str) -> bool:
    """Evidently's `ValueDrift` test status through the Report API (the slow, public way)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    kinds = {"numerical_columns" if column == "confidence" else "categorical_columns": [column]}
    definition = DataDefinition(**kinds)
    snapshot = Report([ValueDrift(column=column)], include_tests=True).run(
        Dataset.from_pandas(pd.DataFrame({column: current}), data_definition=definition),
        Dataset.from_pandas(pd.DataFrame({column: reference}), data_definition=definition),
    )
    (test,) = snapshot.dict()["tests"]
    return str(test["status"]).endswith("FAIL")


@dataclass
class Tally:
    """How often each decision raised a monitor, over how many windows."""

    windows: int = 0
    evidently_windows: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, hit: bool) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(hit)

    def share(self, name: str, evidently: bool = False) -> float:
        total = self.evidently_windows if evidently else self.windows
        return self.counts.get(name, 0) / total if total else float("nan")


def _at_least(status: Status, level: str) -> bool:
    return status == "alert" or (level == "warn" and status == "warn")


def scenario(label: str, n: int, windows: int, seed: int) -> Scenario:
    source, rows = SOURCES[label]
    return Scenario(source, n, windows, seed, baseline_rows=rows or 10_000)


def false_alarms(
    label: str, n: int, args: argparse.Namespace, evidently: Evidently | None
) -> dict[str, Tally]:
    """Stationary windows: each decision's alarms per monitor."""
    config = MonitorsConfig()
    plan = scenario(label, n, args.windows, seed=n)
    population = Population.stationary()
    rng = np.random.default_rng([plan.seed, len(label)])
    tallies = {monitor: Tally() for monitor in COLUMNS}
    # Evidently sees every step-th window, so that its windows span as many references.
    step = max(plan.windows // max(args.evidently_windows, 1), 1)
    reference = plan.reference(population, rng)
    for i in range(plan.windows):
        if i and i % plan.windows_per_reference == 0:
            reference = plan.reference(population, rng)
        values, counts = population.draw(rng, n)
        ours = verdicts(reference, values, counts, config)
        floors = verdicts(reference, values, counts, config, floors_only=True)
        for monitor, tally in tallies.items():
            tally.windows += 1
            for level in ("warn", "alert"):
                tally.add(f"servewatch {level}", _at_least(ours[monitor], level))
                tally.add(f"thresholds {level}", _at_least(floors[monitor], level))
            if evidently is not None and i % step == 0 and i // step < args.evidently_windows:
                tally.evidently_windows += 1
                hit = evidently.drifted(reference, values, counts, monitor, check=i == 0)
                tally.add("evidently", hit)
    return tallies


@dataclass
class Delays:
    """Windows until the first alarm after a shift, per decision (None: not within the cap)."""

    servewatch_warn: list[int | None] = field(default_factory=list)
    servewatch_alert: list[int | None] = field(default_factory=list)
    thresholds_warn: list[int | None] = field(default_factory=list)
    thresholds_alert: list[int | None] = field(default_factory=list)
    evidently: list[int | None] = field(default_factory=list)


def _first(hits: list[bool]) -> int | None:
    return next((i + 1 for i, hit in enumerate(hits) if hit), None)


def delays(
    shift: Shift, label: str, n: int, args: argparse.Namespace, evidently: Evidently | None
) -> Delays:
    """Persistent shift from the first window: windows until each decision's first alarm."""
    config = MonitorsConfig()
    plan = scenario(label, n, args.sequences, seed=n + 17)
    population = Population.stationary()
    shifted = shift.make(population)
    rng = np.random.default_rng([plan.seed, len(label), len(shift.name)])
    found = Delays()
    for s in range(plan.windows):
        reference = plan.reference(population, rng)
        windows = [shifted.draw(rng, n) for _ in range(MAX_WINDOWS)]
        for floors, warn, alert in (
            (False, found.servewatch_warn, found.servewatch_alert),
            (True, found.thresholds_warn, found.thresholds_alert),
        ):
            statuses = [
                verdicts(reference, v, c, config, BUSY_RUN_KEYS, floors, (shift.monitor,))[
                    shift.monitor
                ]
                for v, c in windows
            ]
            warn.append(_first([_at_least(st, "warn") for st in statuses]))
            alert.append(_first([_at_least(st, "alert") for st in statuses]))
        if evidently is not None and s < args.evidently_sequences:
            first = None
            for i, (v, c) in enumerate(windows):
                if evidently.drifted(reference, v, c, shift.monitor, check=s == 0 and i == 0):
                    first = i + 1
                    break
            found.evidently.append(first)
    return found


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f} %"


def _median(values: list[int | None]) -> str:
    if not values:
        return "-"
    capped = [MAX_WINDOWS + 1 if v is None else v for v in values]
    middle = statistics.median_low(capped)
    return f">{MAX_WINDOWS}" if middle > MAX_WINDOWS else str(middle)


def _first_share(values: list[int | None]) -> str:
    return _percent(sum(v == 1 for v in values) / len(values)) if values else "-"


FALSE_ALARM_HEADERS = (
    "reference",
    "n",
    "monitor",
    "servewatch >= warn",
    "servewatch alert",
    "thresholds only >= warn",
    "thresholds only alert",
    "Evidently drift",
)
DELAY_HEADERS = (
    "shift",
    "reference",
    "n",
    ">= warn in 1st window",
    "(thresholds only)",
    "median windows",
    "alert in 1st window",
    "(thresholds only)",
    "median windows",
    "Evidently in 1st window",
    "median windows",
)


def false_alarm_rows(results: dict[tuple[str, int], dict[str, Tally]]) -> list[list[str]]:
    rows = []
    for (label, n), tallies in results.items():
        for monitor, t in tallies.items():
            rows.append(
                [
                    label,
                    str(n),
                    monitor,
                    _percent(t.share("servewatch warn")),
                    _percent(t.share("servewatch alert")),
                    _percent(t.share("thresholds warn")),
                    _percent(t.share("thresholds alert")),
                    _percent(t.share("evidently", evidently=True)),
                ]
            )
    return rows


def delay_rows(results: dict[tuple[str, str, int], Delays]) -> list[list[str]]:
    return [
        [
            shift,
            label,
            str(n),
            _first_share(d.servewatch_warn),
            _first_share(d.thresholds_warn),
            _median(d.servewatch_warn),
            _first_share(d.servewatch_alert),
            _first_share(d.thresholds_alert),
            _median(d.servewatch_alert),
            _first_share(d.evidently),
            _median(d.evidently),
        ]
        for (shift, label, n), d in results.items()
    ]


def markdown(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rich_table(title: str, headers: tuple[str, ...], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i in (0, 2) else "right")
    for row in rows:
        table.add_row(*row)
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--windows", type=int, default=400, help="stationary windows per cell")
    parser.add_argument("--evidently-windows", type=int, default=100)
    parser.add_argument("--sequences", type=int, default=40, help="shifted sequences per cell")
    parser.add_argument("--evidently-sequences", type=int, default=20)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var" / "bench_detection.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    evidently = None if args.no_evidently else Evidently()
    started = time.perf_counter()
    alarms: dict[tuple[str, int], dict[str, Tally]] = {}
    for label in args.sources:
        for n in args.sizes:
            console.log(f"false alarms: {label}, {n} predictions per window")
            alarms[(label, n)] = false_alarms(label, n, args, evidently)
    found: dict[tuple[str, str, int], Delays] = {}
    for shift in SHIFTS:
        for label in [s for s in args.sources if s in DELAY_SOURCES]:
            for n in args.sizes:
                console.log(f"delay: {shift.name}, {label}, {n} predictions per window")
                found[(shift.name, label, n)] = delays(shift, label, n, args, evidently)
    seconds = time.perf_counter() - started
    alarm_rows, delay_table = false_alarm_rows(alarms), delay_rows(found)
    alarm_title = (
        f"False alarms on stationary traffic ({args.windows} windows per row, Evidently "
        f"{args.evidently_windows}; servewatch judging 1 key per run)"
    )
    delay_title = (
        f"Detection delay in windows ({args.sequences} shifted sequences per row, Evidently "
        f"{args.evidently_sequences}; servewatch judging {BUSY_RUN_KEYS} keys per run, the "
        f"thresholds only on the same windows; medians are servewatch's and Evidently's, "
        f"a shift missed within {MAX_WINDOWS} windows counts as >{MAX_WINDOWS})"
    )
    console.print(rich_table(alarm_title, FALSE_ALARM_HEADERS, alarm_rows))
    console.print(rich_table(delay_title, DELAY_HEADERS, delay_table))
    command = "bench/bench_detection.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n\n".join(
        [
            f"Command: `{command.strip()}` ({seconds:.0f} s)",
            f"{alarm_title}\n\n{markdown(FALSE_ALARM_HEADERS, alarm_rows)}",
            f"{delay_title}\n\n{markdown(DELAY_HEADERS, delay_table)}",
        ]
    )
    write_atomically(args.out, text + "\n")
    raw: dict[str, Any] = {
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seconds": seconds,
        "evidently_report_checks": evidently.checked if evidently else 0,
        "false_alarms": {
            f"{k[0]}|{k[1]}": {m: asdict(t) for m, t in v.items()} for k, v in alarms.items()
        },
        "delays": {"|".join(map(str, k)): asdict(v) for k, v in found.items()},
    }
    write_atomically(args.out.with_suffix(".json"), json.dumps(raw, indent=1) + "\n")
    console.print(f"written: {args.out} and {args.out.with_suffix('.json')} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
