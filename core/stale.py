"""The stale-endpoint audit: registered model versions, routes, endpoints and tenants without
traffic in the last N days, and releases nothing references any more. Pure: the caller reads
the store and the configuration."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from core.config import AppConfig, ModelRef, RoutingRule
from core.timeutil import iso_utc

StaleKind = Literal["model_version", "route", "endpoint", "tenant", "release"]
KINDS: tuple[StaleKind, ...] = ("model_version", "route", "endpoint", "tenant", "release")
LATEST = "latest"


@dataclass(frozen=True)
class Usage:
    """The newest prediction of one (endpoint, model version, tenant, region) key."""

    endpoint: str
    model_name: str
    model_version: str
    tenant: str
    region: str | None
    last_seen: datetime


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the registry's mirror, and when it was created."""

    model_name: str
    model_version: str
    created_at: datetime


@dataclass(frozen=True)
class ReleaseLink:
    """What decides whether a release is still referenced: its parent and pinned versions."""

    id: int
    parent_id: int | None
    model_tags: tuple[str, ...]


@dataclass(frozen=True)
class StaleItem:
    """One thing the audit flags: what it is, its name, its last traffic (None: never) and why."""

    kind: StaleKind
    name: str
    last_seen: datetime | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        seen = None if self.last_seen is None else iso_utc(self.last_seen)
        return {"kind": self.kind, "name": self.name, "last_seen": seen, "reason": self.reason}


@dataclass(frozen=True)
class StaleReport:
    """Everything flagged, with the cut-off it was judged against."""

    now: datetime
    days: int
    items: tuple[StaleItem, ...]

    @property
    def cutoff(self) -> datetime:
        return self.now - timedelta(days=self.days)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": iso_utc(self.now),
            "days": self.days,
            "cutoff": iso_utc(self.cutoff),
            "items": [item.to_json() for item in self.items],
        }


def stale_report(
    usage: Sequence[Usage],
    config: AppConfig,
    versions: Sequence[RegisteredVersion],
    releases: Sequence[ReleaseLink],
    in_force_tags: Iterable[str],
    *,
    now: datetime,
    days: int,
) -> StaleReport:
    """What has had no traffic since `now - days` (versions created since then are too new to
    judge), and the releases that are neither the newest, its parent, nor pinning a version a
    rollout in force names (`in_force_tags`, `model:version`)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    cutoff = now - timedelta(days=days)
    items = [
        *_versions(usage, versions, cutoff),
        *_routes(usage, config, cutoff),
        *_names("endpoint", sorted(config.routing), usage, lambda u: u.endpoint, cutoff),
        *_names("tenant", sorted(config.tenants), usage, lambda u: u.tenant, cutoff),
        *unreferenced_releases(releases, set(in_force_tags)),
    ]
    return StaleReport(now, days, tuple(items))


def _last(usage: Iterable[Usage]) -> datetime | None:
    return max((u.last_seen for u in usage), default=None)


def _quiet(last_seen: datetime | None, cutoff: datetime) -> str | None:
    """Why a key is stale (None: it had traffic since `cutoff`)."""
    if last_seen is None:
        return "no traffic ever recorded"
    if last_seen < cutoff:
        return f"no traffic since {last_seen.date().isoformat()}"
    return None


def _versions(
    usage: Sequence[Usage], versions: Sequence[RegisteredVersion], cutoff: datetime
) -> list[StaleItem]:
    items = []
    for v in sorted(versions, key=lambda v: (v.model_name, v.model_version)):
        if v.created_at >= cutoff:
            continue  # registered within the window: too new to call stale
        seen = _last(
            u for u in usage if (u.model_name, u.model_version) == (v.model_name, v.model_version)
        )
        reason = _quiet(seen, cutoff)
        if reason:
            items.append(
                StaleItem("model_version", f"{v.model_name}:{v.model_version}", seen, reason)
            )
    return items


def route_name(endpoint: str, ref: ModelRef) -> str:
    """`classify_ticket -> ticket_classifier:3`; a rule adds its scope, `(region=eu)`."""
    scope = ""
    if isinstance(ref, RoutingRule):
        parts = [
            f"{key}={value}"
            for key, value in (("tenant", ref.tenant), ("region", ref.region))
            if value
        ]
        scope = f" ({', '.join(parts)})"
    return f"{endpoint}{scope} -> {ref.model}:{ref.version}"


def _serves(ref: ModelRef, endpoint: str, u: Usage) -> bool:
    """Whether the prediction key `u` is one the route could have answered."""
    if (u.endpoint, u.model_name) != (endpoint, ref.model):
        return False
    if ref.version != LATEST and u.model_version != ref.version:
        return False
    if isinstance(ref, RoutingRule):
        return ref.tenant in (None, u.tenant) and ref.region in (None, u.region)
    return True


def _routes(usage: Sequence[Usage], config: AppConfig, cutoff: datetime) -> list[StaleItem]:
    items = []
    for endpoint, route in sorted(config.routing.items()):
        for ref in (route.default, *route.rules):
            seen = _last(u for u in usage if _serves(ref, endpoint, u))
            reason = _quiet(seen, cutoff)
            if reason:
                items.append(StaleItem("route", route_name(endpoint, ref), seen, reason))
    return items


def _names(
    kind: StaleKind,
    names: Sequence[str],
    usage: Sequence[Usage],
    key: Callable[[Usage], str],
    cutoff: datetime,
) -> list[StaleItem]:
    items = []
    for name in names:
        seen = _last(u for u in usage if key(u) == name)
        reason = _quiet(seen, cutoff)
        if reason:
            items.append(StaleItem(kind, name, seen, reason))
    return items


def unreferenced_releases(
    releases: Sequence[ReleaseLink], in_force_tags: set[str]
) -> list[StaleItem]:
    """Releases other than the newest and its parent (where `servewatch rollback` goes) that pin
    no version of a rollout in force, oldest first."""
    if not releases:
        return []
    newest = max(releases, key=lambda r: r.id)
    kept = {newest.id, newest.parent_id}
    return [
        StaleItem(
            "release",
            str(release.id),
            None,
            "not the newest release, not its parent, and pins no version of a rollout in force",
        )
        for release in sorted(releases, key=lambda r: r.id)
        if release.id not in kept and not in_force_tags & set(release.model_tags)
    ]
