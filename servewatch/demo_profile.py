"""The local stack's demo pace: the same config, rules and monitors, on a clock a newcomer can
watch. Production windows (an hour, judged every five minutes, alerts held for half an hour)
would show nothing in a few minutes; the demo judges one-minute windows every 15 seconds,
holds alerts for 30 seconds, and injects a class shift for one tenant partway through.

Everything here is data laid over what the user configured; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.spec import AlertSpec
from core.config import AppConfig, MonitorSchedule
from core.contracts import MONITOR_NAMES

DEMO_SCHEDULE = MonitorSchedule(every_seconds=15, window_seconds=60)
DEMO_COST_SCHEDULE = MonitorSchedule(every_seconds=60, window_seconds=60)
DEMO_ALERT_FOR = "30s"
DEMO_GROUP_WAIT = "10s"


@dataclass(frozen=True)
class DemoDrift:
    """The drift the demo traffic carries: `kind` for `tenant` from `at_s` seconds on."""

    at_s: float = 60.0
    tenant: str = "globex"
    kind: str = "class_shift"

    def traffic_scenario(self) -> str:
        """The `servewatch traffic --scenario` argument."""
        return f"{self.kind}@{self.at_s:g}:{self.tenant}"

    def describe(self) -> str:
        return f"{self.kind} for tenant {self.tenant} from t+{self.at_s:g}s"


def demo_app_config(config: AppConfig) -> AppConfig:
    """`config` with every monitor on the demo's short windows."""
    schedules = {
        name: DEMO_COST_SCHEDULE if name == "cost" else DEMO_SCHEDULE for name in MONITOR_NAMES
    }
    monitors = config.monitors.model_copy(update={"schedules": schedules})
    return config.model_copy(update={"monitors": monitors})


def demo_alert_spec(spec: AlertSpec) -> AlertSpec:
    """`spec` with the drift and traffic alerts held for `DEMO_ALERT_FOR` and notifications
    grouped for `DEMO_GROUP_WAIT` (the burn-rate alerts keep their windows: they need hours)."""
    drift = tuple(alert.model_copy(update={"for_": DEMO_ALERT_FOR}) for alert in spec.drift)
    traffic = spec.traffic.model_copy(update={"for_": DEMO_ALERT_FOR})
    alertmanager = spec.alertmanager.model_copy(update={"group_wait": DEMO_GROUP_WAIT})
    return spec.model_copy(
        update={"drift": drift, "traffic": traffic, "alertmanager": alertmanager}
    )
