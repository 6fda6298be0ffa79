"""Weekly cost budget alerts per tenant: each level fires until the next one takes over."""

from __future__ import annotations

from alerts.rules import AlertRule, RuleGroup
from alerts.slo import number, percent
from alerts.spec import BudgetAlert

SPENT_SHARE = (
    "max by (tenant) (servewatch_tenant_week_cost_usd)\n"
    "/\n"
    "max by (tenant) (servewatch_tenant_weekly_budget_usd)"
)


def budget_alert(level: BudgetAlert, next_share: float | None, runbook: str) -> AlertRule:
    below_next = "" if next_share is None else f" < {number(next_share)}"
    return AlertRule(
        name=level.alert,
        expr=f"{SPENT_SHARE}\n>= {number(level.share)}{below_next}",
        severity=level.severity,
        for_=level.for_,
        summary=(
            f"Tenant {{{{ $labels.tenant }}}} has spent {percent(level.share)} or more of its "
            "weekly budget."
        ),
        description=(
            "Tenant {{ $labels.tenant }} has spent {{ $value | humanizePercentage }} of its "
            "weekly budget in the current ISO week (attributed compute plus its share of idle "
            "capacity)."
        ),
        runbook_url=f"{runbook}#{level.alert.lower()}",
    )


def budget_group(levels: tuple[BudgetAlert, ...], runbook: str) -> RuleGroup:
    ordered = sorted(levels, key=lambda level: level.share)
    shares = [level.share for level in ordered[1:]] + [None]
    rules = tuple(
        budget_alert(level, next_share, runbook)
        for level, next_share in zip(ordered, shares, strict=True)
    )
    return RuleGroup("servewatch-finops", rules)
