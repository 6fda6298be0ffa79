"""Weekly FinOps figures: spend by day, tenant, model, endpoint; changes, idle, budgets, anomalies.

Pure functions over `storage.aggregates.daily_compute_totals` frames. Prices come from
`monitors.cost.compute_costs` with one capacity period per UTC day: the CPU seconds requests
kept the workers busy are priced at the capacity's price per CPU second, what they left idle is
shared across that day's usage in proportion to busy time (as OpenCost does), and busy + idle =
capacity. Attributed costs are the cost monitor's to the cent. Capacity is billed from the day of
the first recorded prediction on; on billed days without traffic nobody used the capacity, so its
cost stays unallocated idle.

Over 400 lines on purpose: one ledger feeds every figure and the summary sentences read them all,
so splitting would pass the same half-built frames between modules.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from core.config import AppConfig, PricingConfig
from core.timeutil import IsoWeek, days_between, midnight
from monitors.cost import compute_costs, period_capacity

DAY_SECONDS = 86_400
HISTORY_DAYS = 28  # the trend chart's span, ending with the report's week
BASELINE_DAYS = 28  # trailing days an anomaly is judged against (same kind of day only)
MIN_BASELINE_DAYS = 6
ANOMALY_Z = 3.5  # Iglewicz and Hoaglin's cut-off for the modified z-score
ANOMALY_MIN_USD = 0.01  # a day must also differ from its baseline by at least a cent
TOP_MOVERS = 5
# Fewer replicas are suggested only if they would have run the week's busiest hour at no more
# than this share of their CPU: the rest is headroom for bursts within the hour and for the
# loss of a replica.
PEAK_UTILISATION_TARGET = 0.6
MONEY = ("usage_cost_usd", "fee_usd", "attributed_cost_usd", "idle_cost_usd", "total_cost_usd")
SUMS = ("n", "requests", "compute_seconds", "busy_seconds", *MONEY)
MOVER_KEYS = ("tenant", "model_name", "endpoint")


@dataclass(frozen=True)
class Change:
    """A figure this week beside the week before."""

    current: float
    previous: float

    @property
    def delta(self) -> float:
        return self.current - self.previous

    @property
    def pct(self) -> float | None:
        return self.delta / self.previous * 100.0 if self.previous else None


@dataclass(frozen=True)
class PeakHour:
    """The week's busiest UTC hour by the workers' busy time."""

    start: datetime
    busy_seconds: float


@dataclass(frozen=True)
class IdleSummary:
    """Capacity against what requests used (billed days of the week): busy + idle = capacity,
    in CPU seconds and in dollars; request fees come on top."""

    capacity_seconds: float
    busy_seconds: float
    capacity_cost_usd: float
    usage_cost_usd: float  # the busy time, priced
    shared_idle_usd: float
    unallocated_idle_usd: float
    fee_usd: float
    measured_days: int  # provisioned days on which requests used more than the configured CPU
    replicas: int  # provisioned (0: paid per use)
    cpus: float  # of one replica
    hourly_rate_usd: float  # of one replica
    peak: PeakHour | None = None

    @property
    def idle_seconds(self) -> float:
        return self.capacity_seconds - self.busy_seconds

    @property
    def idle_usd(self) -> float:
        return self.shared_idle_usd + self.unallocated_idle_usd

    @property
    def idle_pct(self) -> float | None:
        """Share of the capacity cost that bought nothing."""
        return self.idle_usd / self.capacity_cost_usd * 100.0 if self.capacity_cost_usd else None

    @property
    def utilisation_pct(self) -> float | None:
        """Share of the capacity's CPU seconds that requests used."""
        if not self.capacity_seconds:
            return None
        return self.busy_seconds / self.capacity_seconds * 100.0

    @property
    def peak_utilisation_pct(self) -> float | None:
        """Share of the provisioned CPU the busiest hour used."""
        if self.peak is None or not self.replicas:
            return None
        return self.peak.busy_seconds / (self.replicas * self.cpus * 3600.0) * 100.0

    def replicas_for_peak(self) -> int | None:
        """The fewest replicas that would have run the busiest hour within the target."""
        if self.peak is None or not self.replicas:
            return None
        per_replica = self.cpus * 3600.0 * PEAK_UTILISATION_TARGET
        return max(1, math.ceil(self.peak.busy_seconds / per_replica))


@dataclass(frozen=True)
class WeeklyFigures:
    """Every figure of one week's FinOps report."""

    week: IsoWeek
    days: pd.DataFrame  # the week's seven days (see day_ledger)
    history: pd.DataFrame  # the HISTORY_DAYS days ending with the week
    by_tenant: pd.DataFrame
    by_model_version: pd.DataFrame
    by_endpoint: pd.DataFrame
    per_thousand: pd.DataFrame
    movers: pd.DataFrame
    budgets: pd.DataFrame
    anomalies: pd.DataFrame
    spend: Change
    usage: Change
    predictions: Change
    idle: IdleSummary
    summary: list[str]

    @property
    def has_traffic(self) -> bool:
        return self.predictions.current > 0


def data_range(week: IsoWeek) -> tuple[date, date]:
    """The days [start, end) the figures read: trend, anomaly baselines and the month so far."""
    history = week.end - timedelta(days=HISTORY_DAYS)
    baseline = week.start - timedelta(days=BASELINE_DAYS)
    return min(week.month_start, history, baseline), week.end


def budgets_of(config: AppConfig) -> dict[str, float]:
    """Weekly budgets per tenant, for the tenants that have one."""
    return {
        name: float(tenant.weekly_budget_usd)
        for name, tenant in config.tenants.items()
        if tenant.weekly_budget_usd is not None
    }


def weekly_figures(
    totals: pd.DataFrame,
    week: IsoWeek,
    pricing: PricingConfig,
    budgets: Mapping[str, float],
    first_day: date | None,
    hourly: pd.DataFrame | None = None,
) -> WeeklyFigures:
    """All figures of `week` from daily totals covering `data_range(week)`.

    `first_day` is the UTC day of the store's first prediction: capacity is billed from then on.
    `hourly` (`storage.aggregates.hourly_busy_ms` over the week) finds the busiest hour, which
    any advice on the number of replicas needs; without it none is given.
    """
    start, end = data_range(week)
    billed_from = _billed_from(totals, first_day)
    costs = compute_costs(totals, pricing, DAY_SECONDS, by=["day"])
    ledger = day_ledger(costs, pricing, days_between(start, end), billed_from)
    current = _within(costs, week.start, week.end)
    previous = _within(costs, week.previous.start, week.previous.end)
    week_days = _within(ledger, week.start, week.end)
    previous_days = _within(ledger, week.previous.start, week.previous.end)
    movers = top_movers(breakdown(current, previous, list(MOVER_KEYS)))
    month = _within(costs, week.month_start, week.end)
    budget_frame = budget_status(month, current, week_days, week, budgets)
    anomaly_frame = anomalies(ledger, week)
    figures = WeeklyFigures(
        week=week,
        days=week_days.reset_index(drop=True),
        history=_within(ledger, week.end - timedelta(days=HISTORY_DAYS), week.end),
        by_tenant=breakdown(current, previous, ["tenant"]),
        by_model_version=breakdown(current, previous, ["model_name", "model_version"]),
        by_endpoint=breakdown(current, previous, ["endpoint"]),
        per_thousand=cost_per_thousand(current, previous),
        movers=movers,
        budgets=budget_frame,
        anomalies=anomaly_frame,
        spend=Change(_sum(week_days, "total_cost_usd"), _sum(previous_days, "total_cost_usd")),
        usage=Change(
            _sum(week_days, "attributed_cost_usd"), _sum(previous_days, "attributed_cost_usd")
        ),
        predictions=Change(_sum(week_days, "n"), _sum(previous_days, "n")),
        idle=_idle_summary(week_days, pricing, _peak_hour(hourly, week)),
        summary=[],
    )
    return _with_summary(figures)


def day_ledger(
    costs: pd.DataFrame, pricing: PricingConfig, days: Sequence[date], billed_from: date | None
) -> pd.DataFrame:
    """Per day: predictions, requests, busy time and its cost, fees, shared and unallocated
    idle, capacity (CPU seconds and dollars), total. Busy + idle = capacity, both ways."""
    sums = costs.groupby("day")[list(SUMS)].sum() if not costs.empty else None
    rows = []
    for day in days:
        billed = billed_from is not None and day >= billed_from
        used = sums.loc[day] if sums is not None and day in sums.index else None
        row = {column: float(used[column]) if used is not None else 0.0 for column in SUMS}
        # The same capacity compute_costs priced the day's usage with (none before billing).
        capacity = period_capacity(
            pricing, DAY_SECONDS if billed else 0.0, row["busy_seconds"], row["usage_cost_usd"]
        )
        unallocated = capacity.cost_usd if used is None else 0.0
        rows.append(
            {
                "day": day,
                "billed": billed,
                **row,
                "unallocated_idle_usd": unallocated,
                "capacity_seconds": capacity.seconds,
                "idle_seconds": capacity.idle_seconds,
                "utilisation_pct": _ratio_pct(capacity.busy_seconds, capacity.seconds),
                "capacity_measured": capacity.measured and used is not None,
                "capacity_cost_usd": capacity.cost_usd,
                "total_cost_usd": row["total_cost_usd"] + unallocated,
            }
        )
    frame = pd.DataFrame(rows, columns=_LEDGER_COLUMNS)
    return frame.astype(
        {"n": "int64", "requests": "int64", "billed": "bool", "capacity_measured": "bool"}
    )


_LEDGER_COLUMNS = [
    "day",
    "billed",
    *SUMS,
    "unallocated_idle_usd",
    "capacity_seconds",
    "idle_seconds",
    "utilisation_pct",
    "capacity_measured",
    "capacity_cost_usd",
]


def _ratio_pct(part: float, whole: float) -> float | None:
    return part / whole * 100.0 if whole > 0 else None


def _idle_summary(
    week_days: pd.DataFrame, pricing: PricingConfig, peak: PeakHour | None
) -> IdleSummary:
    provisioned = pricing.capacity
    measured = int(week_days["capacity_measured"].sum()) if provisioned.replicas else 0
    return IdleSummary(
        capacity_seconds=_sum(week_days, "capacity_seconds"),
        busy_seconds=_sum(week_days, "busy_seconds"),
        capacity_cost_usd=_sum(week_days, "capacity_cost_usd"),
        usage_cost_usd=_sum(week_days, "usage_cost_usd"),
        shared_idle_usd=_sum(week_days, "idle_cost_usd"),
        unallocated_idle_usd=_sum(week_days, "unallocated_idle_usd"),
        fee_usd=_sum(week_days, "fee_usd"),
        measured_days=measured,
        replicas=provisioned.replicas,
        cpus=provisioned.cpus,
        hourly_rate_usd=provisioned.hourly_rate_usd,
        peak=peak,
    )


def _peak_hour(hourly: pd.DataFrame | None, week: IsoWeek) -> PeakHour | None:
    if hourly is None:
        return None
    start, end = midnight(week.start), midnight(week.end)
    inside = hourly[(hourly["hour"] >= start) & (hourly["hour"] < end)]
    if inside.empty:
        return None
    busiest = inside.loc[inside["busy_ms"].idxmax()]
    return PeakHour(busiest["hour"].to_pydatetime(), float(busiest["busy_ms"]) / 1000.0)


def breakdown(current: pd.DataFrame, previous: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Spend per `keys` this week beside the week before (rows of either week), largest first."""
    now = _sum_by(current, keys)
    before = _sum_by(previous, keys)["total_cost_usd"].rename("previous_total_cost_usd")
    frame = now.join(before, how="outer").fillna(0.0).reset_index()
    frame = frame.astype({"n": "int64", "requests": "int64"})
    frame["change_usd"] = frame["total_cost_usd"] - frame["previous_total_cost_usd"]
    frame["change_pct"] = _pct(frame["change_usd"], frame["previous_total_cost_usd"])
    total = float(frame["total_cost_usd"].sum())
    frame["share_pct"] = frame["total_cost_usd"] / total * 100.0 if total else 0.0
    ordered = frame.sort_values(["total_cost_usd", *keys], ascending=[False, *[True] * len(keys)])
    return ordered.reset_index(drop=True)


def top_movers(by_key: pd.DataFrame, limit: int = TOP_MOVERS) -> pd.DataFrame:
    """The rows whose spend changed most week over week, in either direction."""
    moved = by_key[by_key["change_usd"].abs() > 1e-9]
    order = moved["change_usd"].abs().sort_values(ascending=False, kind="stable").index
    columns = [*MOVER_KEYS, "previous_total_cost_usd", "total_cost_usd", "change_usd", "change_pct"]
    return moved.loc[order, columns].head(limit).reset_index(drop=True)


def cost_per_thousand(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Cost per 1,000 predictions per model: usage-priced (the cost monitor's) and all-in."""
    now = _sum_by(current, ["model_name"])
    before = _sum_by(previous, ["model_name"])
    frame = now[["n", "attributed_cost_usd", "total_cost_usd"]].join(
        (before["attributed_cost_usd"] / before["n"] * 1000.0).rename("previous_usage_per_1k_usd"),
        how="outer",
    )
    frame[["n", "attributed_cost_usd", "total_cost_usd"]] = frame[
        ["n", "attributed_cost_usd", "total_cost_usd"]
    ].fillna(0.0)
    n = frame["n"].where(frame["n"] > 0)
    frame["usage_per_1k_usd"] = frame["attributed_cost_usd"] / n * 1000.0
    frame["all_in_per_1k_usd"] = frame["total_cost_usd"] / n * 1000.0
    frame["change_pct"] = _pct(
        frame["usage_per_1k_usd"] - frame["previous_usage_per_1k_usd"],
        frame["previous_usage_per_1k_usd"],
    )
    frame = frame.reset_index().astype({"n": "int64"})
    columns = [
        "model_name",
        "n",
        "attributed_cost_usd",
        "total_cost_usd",
        "usage_per_1k_usd",
        "all_in_per_1k_usd",
        "previous_usage_per_1k_usd",
        "change_pct",
    ]
    return frame[columns].sort_values("model_name").reset_index(drop=True)


def budget_status(
    month_costs: pd.DataFrame,
    week_costs: pd.DataFrame,
    week_days: pd.DataFrame,
    week: IsoWeek,
    budgets: Mapping[str, float],
) -> pd.DataFrame:
    """Weekly budget against actual per tenant, and the month-end forecast.

    Forecast = the month's spend up to the week's end + the week's daily run rate (spend over
    its billed days) x the days left in the month; month budget = weekly x days_in_month / 7.
    """
    month = week.month_start
    days_in_month = calendar.monthrange(month.year, month.month)[1]
    remaining = (month.replace(day=days_in_month) - (week.end - timedelta(days=1))).days
    billed_days = int(week_days["billed"].sum())
    to_date = _sum_by(month_costs, ["tenant"])["total_cost_usd"]
    this_week = _sum_by(week_costs, ["tenant"])["total_cost_usd"]
    tenants = sorted(set(budgets) | set(to_date.index) | set(this_week.index))
    rows = []
    for tenant in tenants:
        actual = float(this_week.get(tenant, 0.0))
        rate = actual / billed_days if billed_days else 0.0
        so_far = float(to_date.get(tenant, 0.0))
        forecast = so_far + rate * remaining
        weekly = budgets.get(tenant)
        monthly = weekly * days_in_month / 7.0 if weekly is not None else None
        rows.append(
            {
                "tenant": tenant,
                "weekly_budget_usd": weekly,
                "week_actual_usd": actual,
                "week_used_pct": actual / weekly * 100.0 if weekly else None,
                "month": f"{month:%Y-%m}",
                "month_to_date_usd": so_far,
                "run_rate_usd_per_day": rate,
                "remaining_days": remaining,
                "forecast_usd": forecast,
                "month_budget_usd": monthly,
                "forecast_pct_of_budget": forecast / monthly * 100.0 if monthly else None,
                "status": _budget_verdict(actual, weekly, forecast, monthly),
            }
        )
    return pd.DataFrame(rows, columns=_BUDGET_COLUMNS).astype({"remaining_days": "int64"})


_BUDGET_COLUMNS = [
    "tenant",
    "weekly_budget_usd",
    "week_actual_usd",
    "week_used_pct",
    "month",
    "month_to_date_usd",
    "run_rate_usd_per_day",
    "remaining_days",
    "forecast_usd",
    "month_budget_usd",
    "forecast_pct_of_budget",
    "status",
]


def _budget_verdict(
    actual: float, weekly: float | None, forecast: float, monthly: float | None
) -> str:
    if weekly is None or monthly is None:
        return "no budget"
    if actual > weekly:
        return "over weekly budget"
    if forecast > monthly:
        return "forecast over month budget"
    return "on track"


def anomalies(ledger: pd.DataFrame, week: IsoWeek) -> pd.DataFrame:
    """Each day of the week's usage cost against the same kind of day before it.

    The baseline is the billed weekdays (or weekend days, for a weekend day) among the
    BASELINE_DAYS before the day: traffic has a weekly rhythm, and weekends judged against
    weekdays would stand out every week. Usage (attributed) cost, not total spend: idle sharing
    floors a day's total at its capacity cost, which would hide most swings. Modified z-score
    0.6745 (x - median) / MAD; when the MAD is 0, (x - median) / (1.2533 mean absolute deviation).
    """
    usage = ledger.set_index("day")
    rows = []
    for day in week.days:
        trailing = usage.loc[
            [
                d
                for d in days_between(day - timedelta(days=BASELINE_DAYS), day)
                if _weekend(d) == _weekend(day)
            ]
        ]
        baseline = trailing.loc[trailing["billed"], "attributed_cost_usd"].to_numpy(float)
        value = float(usage.at[day, "attributed_cost_usd"])
        z = robust_z(value, baseline)
        median = float(np.median(baseline)) if len(baseline) else None
        rows.append(
            {
                "day": day,
                "usage_cost_usd": value,
                "baseline_days": len(baseline),
                "baseline_median_usd": median,
                "robust_z": z,
                "flagged": _stands_out(value, median, z),
            }
        )
    return pd.DataFrame(rows, columns=_ANOMALY_COLUMNS).astype({"flagged": "bool"})


_ANOMALY_COLUMNS = [
    "day",
    "usage_cost_usd",
    "baseline_days",
    "baseline_median_usd",
    "robust_z",
    "flagged",
]


def _weekend(day: date) -> bool:
    return day.weekday() >= 5


def robust_z(value: float, baseline: np.ndarray) -> float | None:
    """Modified z-score of `value` against `baseline`; None with too little history."""
    if len(baseline) < MIN_BASELINE_DAYS:
        return None
    median = float(np.median(baseline))
    deviations = np.abs(baseline - median)
    mad = float(np.median(deviations))
    if mad > 0:
        return 0.6745 * (value - median) / mad
    mean_deviation = float(np.mean(deviations))
    if mean_deviation > 0:
        return (value - median) / (1.253314 * mean_deviation)
    if math.isclose(value, median, abs_tol=1e-12):
        return 0.0
    return math.copysign(math.inf, value - median)


def _stands_out(value: float, median: float | None, z: float | None) -> bool:
    if z is None or median is None:
        return False
    return abs(z) >= ANOMALY_Z and abs(value - median) >= ANOMALY_MIN_USD


def usd(value: float) -> str:
    """Dollars with cents; sub-cent amounts keep four decimals so they do not read as zero."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if 0 < amount < 0.005:
        return f"{sign}${amount:,.4f}"
    return f"{sign}${amount:,.2f}"


def percent(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    digits = 0 if abs(value) >= 10 else 1
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def _with_summary(figures: WeeklyFigures) -> WeeklyFigures:
    return replace(figures, summary=summarize(figures))


def summarize(figures: WeeklyFigures) -> list[str]:
    """What changed and why it matters, in a few sentences generated from the figures."""
    if not figures.has_traffic:
        return _quiet_week(figures)
    lines = [_spend_line(figures)]
    usage = figures.usage
    spend_pct, usage_pct = figures.spend.pct, usage.pct
    if usage_pct is not None and abs(usage_pct) >= 10 and abs(spend_pct or 0.0) < 5:
        verb = "rose" if usage.delta > 0 else "fell"
        lines.append(
            f"Usage cost {verb} {percent(abs(usage_pct))} ({usd(usage.previous)} to "
            f"{usd(usage.current)}), but total spend barely moved: provisioned capacity sets a "
            "floor under it."
        )
    lines.extend(capacity_lines(figures.idle))
    lines.extend(_budget_lines(figures.budgets, f"{figures.week.month_start:%B %Y}"))
    lines.extend(_anomaly_lines(figures.anomalies))
    return lines


def capacity_lines(idle: IdleSummary) -> list[str]:
    """How much of the capacity requests used, and advice on replicas only where the busiest
    hour supports it."""
    if not idle.replicas:
        return []  # paid per use: nothing provisioned, nothing idle
    if idle.measured_days:
        days = f"{idle.measured_days} day{'s' if idle.measured_days != 1 else ''}"
        return [
            f"On {days} requests kept the workers busy for more CPU time than the configured "
            f"capacity ({idle.replicas} x {idle.cpus:g} CPU) offers: check pricing.capacity; "
            "those days' capacity is the measured busy time, with nothing idle."
        ]
    used = percent(idle.utilisation_pct)
    line = f"Requests used {used} of the capacity's CPU time; {percent(idle.idle_pct)} sat idle"
    needed, peak = idle.replicas_for_peak(), idle.peak_utilisation_pct
    if needed is None or peak is None or idle.peak is None:
        return [f"{line}."]
    busiest = (
        f"the busiest hour ({idle.peak.start:%a %d %b %H:00} UTC) used {percent(peak)} of the "
        "capacity"
    )
    target = percent(PEAK_UTILISATION_TARGET * 100)
    if needed < idle.replicas:
        saving = (idle.replicas - needed) * idle.hourly_rate_usd * 24 * 7
        fewer = f"{needed} replica{'s' if needed != 1 else ''}"
        return [
            f"{line}, and {busiest}: {fewer} instead of {idle.replicas} would have run it at no "
            f"more than {target} of {'their' if needed != 1 else 'its'} CPU, saving about "
            f"{usd(saving)} a week."
        ]
    if needed > idle.replicas:
        return [
            f"{line}, but {busiest}, above the {target} that leaves headroom: {needed} replicas "
            "would have kept it within."
        ]
    if idle.replicas == 1:
        return [f"{line}; {busiest}. One replica is the least there can be."]
    return [
        f"{line}, but {busiest}: fewer replicas would have run it above {target} of their CPU, "
        "so the idle time is headroom rather than waste."
    ]


def _quiet_week(figures: WeeklyFigures) -> list[str]:
    lines = [f"There was no traffic in {figures.week.label}: no predictions were recorded."]
    if figures.spend.current > 0:
        lines.append(
            f"Provisioned capacity still cost {usd(figures.spend.current)}, all of it idle."
        )
    if figures.predictions.previous > 0:
        lines.append(
            f"The week before served {int(figures.predictions.previous):,} predictions for "
            f"{usd(figures.spend.previous)}."
        )
    return lines


def _spend_line(figures: WeeklyFigures) -> str:
    spend, n = figures.spend, int(figures.predictions.current)
    volume = f"{n:,} prediction{'s' if n != 1 else ''}"
    if spend.pct is None:
        return (
            f"Spend was {usd(spend.current)} for {volume}; there was no spend the week before "
            "to compare with."
        )
    if abs(spend.pct) < 1:
        line = (
            f"Spend held steady at {usd(spend.current)} for {volume} "
            f"({percent(spend.pct, signed=True)} week over week)"
        )
        mover = _describe_mover(figures.movers.iloc[0]) if not figures.movers.empty else None
        return f"{line}; the largest mover was {mover}." if mover else f"{line}."
    verb = "rose" if spend.delta > 0 else "fell"
    line = (
        f"Spend {verb} {percent(abs(spend.pct))} week over week to {usd(spend.current)} "
        f"(from {usd(spend.previous)}) for {volume}"
    )
    driver = _driver(figures.movers, spend.delta)
    return f"{line}, driven by {driver}." if driver else f"{line}."


def _driver(movers: pd.DataFrame, delta: float) -> str | None:
    same_way = movers[np.sign(movers["change_usd"]) == np.sign(delta)]
    if same_way.empty:
        return None
    return _describe_mover(same_way.iloc[0])


def _describe_mover(row: pd.Series) -> str:
    change = float(row["change_usd"])
    sign = "+" if change > 0 else "-"
    return f"{row['tenant']}'s {row['endpoint']} ({row['model_name']}, {sign}{usd(abs(change))})"


def _budget_lines(budgets: pd.DataFrame, month: str) -> list[str]:
    budgeted = budgets[budgets["status"] != "no budget"]
    lines = []
    for row in budgeted.itertuples(index=False):
        if row.status == "over weekly budget":
            lines.append(
                f"{row.tenant} spent {usd(row.week_actual_usd)} against a weekly budget of "
                f"{usd(row.weekly_budget_usd)} ({percent(row.week_used_pct)} of it)."
            )
        elif row.status == "forecast over month budget":
            lines.append(
                f"{row.tenant} is forecast to spend {usd(row.forecast_usd)} in {month} "
                f"against a budget of {usd(row.month_budget_usd)}."
            )
    if budgeted.empty or lines:
        return lines
    count = len(budgeted)
    return [f"All {count} budgeted tenant{'s are' if count != 1 else ' is'} on track."]


def _anomaly_lines(frame: pd.DataFrame) -> list[str]:
    lines = []
    for row in frame[frame["flagged"]].itertuples(index=False):
        direction = "above" if row.usage_cost_usd > row.baseline_median_usd else "below"
        lines.append(
            f"Usage cost on {row.day:%a %d %b} ({usd(row.usage_cost_usd)}) stood out: robust z "
            f"{_z_text(row.robust_z)}, {direction} the trailing median of "
            f"{usd(row.baseline_median_usd)}."
        )
    return lines


def _z_text(z: float) -> str:
    return f"{z:+.1f}" if math.isfinite(z) else ("+inf" if z > 0 else "-inf")


def _billed_from(totals: pd.DataFrame, first_day: date | None) -> date | None:
    candidates = [first_day] if first_day is not None else []
    if not totals.empty:
        candidates.append(min(totals["day"]))
    return min(candidates) if candidates else None


def _within(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame["day"] >= start) & (frame["day"] < end)]


def _sum_by(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        index: pd.Index = (
            pd.MultiIndex.from_tuples([], names=list(keys))
            if len(keys) > 1
            else pd.Index([], name=keys[0])
        )
        return pd.DataFrame(columns=list(SUMS), index=index).astype(float)
    return frame.groupby(list(keys), sort=True)[list(SUMS)].sum()


def _sum(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].sum()) if not frame.empty else 0.0


def _pct(delta: pd.Series, base: pd.Series) -> pd.Series:
    # Float noise (1e-14 of a dollar) is no change.
    settled = delta.where(delta.abs() > 1e-12, 0.0)
    return (settled / base.where(base > 0)) * 100.0
