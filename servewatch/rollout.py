"""Canary rollouts: what `rollout start` plans from the configured routes, and what
`servewatch rollback` undoes (the active rollout, a promoted one, or else the release)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.config import AppConfig, app_config_yaml
from core.contracts import AuditEvent
from storage.audit import append
from storage.engine import Engine
from storage.releases import ReleaseRecord, get_release, latest_release
from storage.rollouts import (
    Rollout,
    RolloutError,
    RolloutMode,
    RolloutPlan,
    abort_rollout,
    check_steps,
    pin_versions,
    roll_back_rollout,
    rollouts_in_force,
)

# (model name, version or `latest`) -> the exact registered version; LookupError when unknown.
VersionResolver = Callable[[str, str], str]


def parse_model_ref(text: str) -> tuple[str, str]:
    """`MODEL:VERSION` as (model, version); RolloutError when malformed."""
    model, sep, version = text.partition(":")
    if not sep or not model or not version:
        raise RolloutError(f"expected MODEL:VERSION, got {text!r}")
    return model, version


def parse_steps(text: str) -> tuple[float, ...]:
    """`5,25,50,100` as percentages (checked: rising, ending at 100)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise RolloutError(f"steps must be numbers separated by commas, not {text!r}") from exc
    return check_steps(values)


@dataclass(frozen=True)
class Scope:
    """Who a rollout applies to, and how requests are assigned."""

    tenant: str | None = None
    region: str | None = None
    mode: RolloutMode = "hash"


def serving_config(engine: Engine, config: AppConfig, model: str) -> AppConfig:
    """The routes to plan a rollout of `model` on: the newest release's (pinned: what the
    service runs) when the configuration's routes of `model` say `latest`, which resolves to
    whatever was registered last (the candidate itself, often); else the configuration's."""
    floating = any(
        route.default.model == model and route.default.version == "latest"
        for route in config.routing.values()
    )
    release = latest_release(engine) if floating else None
    return config if release is None else AppConfig.model_validate(release.config)


def plan_rollout(
    config: AppConfig,
    candidate: str,
    steps: Sequence[float],
    resolve: VersionResolver,
    scope: Scope = Scope(),
) -> RolloutPlan:
    """The rollout of `candidate` (MODEL:VERSION) over every endpoint whose default route
    serves that model; its baseline is the exact version those routes serve now."""
    model, version = parse_model_ref(candidate)
    endpoints = tuple(e for e, route in config.routing.items() if route.default.model == model)
    if not endpoints:
        raise RolloutError(f"no route serves {model} by default")
    try:
        candidate_version = resolve(model, version)
        baselines = {resolve(model, config.routing[e].default.version) for e in endpoints}
    except LookupError as exc:
        raise RolloutError(f"{model}: {exc}") from exc
    if len(baselines) != 1:
        raise RolloutError(f"the routes of {model} serve several versions: {sorted(baselines)}")
    baseline = baselines.pop()
    if baseline == candidate_version:
        raise RolloutError(f"{model}:{candidate_version} already serves {', '.join(endpoints)}")
    return RolloutPlan(
        endpoints=endpoints,
        candidate_model=model,
        candidate_version=candidate_version,
        baseline_model=model,
        baseline_version=baseline,
        steps=check_steps(steps),
        tenant=scope.tenant,
        region=scope.region,
        mode=scope.mode,
    )


def pick_rollout(engine: Engine, rollout_id: int | None, state: str = "active") -> Rollout:
    """The rollout `rollout_id`, or the only one in `state` when no id is given."""
    found = [r for r in rollouts_in_force(engine) if r.state == state]
    if rollout_id is not None:
        found = [r for r in found if r.id == rollout_id]
        if not found:
            raise RolloutError(f"rollout {rollout_id} is not {state}")
    if len(found) != 1:
        ids = ", ".join(str(r.id) for r in found) or "none"
        raise RolloutError(f"{len(found)} rollouts are {state} ({ids}): name one with --id")
    return found[0]


@dataclass(frozen=True)
class RolledBack:
    """What `roll_back` did: rollouts ended; or the release restored, with the rollouts that
    serve its versions on the live workers and what only a restart on its configuration does."""

    rollouts: list[Rollout]
    release: ReleaseRecord | None = None
    from_release: int | None = None
    needs_restart: tuple[str, ...] = ()


def release_rollback_plans(
    current: AppConfig, parent: AppConfig
) -> tuple[list[RolloutPlan], list[str]]:
    """The rollouts that make live workers serve `parent`'s default versions where `current`'s
    differ (one per model and pair of versions), and the endpoints whose change they cannot
    make (another model, a new or dropped endpoint, other rules): those need a restart."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    restart = []
    for endpoint in sorted(set(current.routing) | set(parent.routing)):
        now, then = current.routing.get(endpoint), parent.routing.get(endpoint)
        if now is None or then is None or now.default.model != then.default.model:
            restart.append(endpoint)
            continue
        if now.rules != then.rules:
            restart.append(endpoint)
        if now.default.version != then.default.version:
            key = (now.default.model, now.default.version, then.default.version)
            grouped.setdefault(key, []).append(endpoint)
    plans = [
        RolloutPlan(
            endpoints=tuple(endpoints),
            candidate_model=model,
            candidate_version=parent_version,
            baseline_model=model,
            baseline_version=current_version,
            steps=(100.0,),
        )
        for (model, current_version, parent_version), endpoints in grouped.items()
    ]
    return plans, restart


def roll_back(
    engine: Engine, *, actor: str, now: datetime, release_config_out: Callable[[str], None]
) -> RolledBack:
    """Abort the active rollouts; else undo the newest promoted one; else restore the newest
    release's parent: live, through rollouts at 100 % to its versions, and for the next start
    (its pinned configuration goes to `release_config_out`, as YAML)."""
    in_force = rollouts_in_force(engine)
    active = [r for r in in_force if r.state == "active"]
    if active:
        ended = [
            abort_rollout(engine, r.id, actor=actor, now=now, reason="rollback") for r in active
        ]
        return RolledBack(ended)
    if in_force:
        newest = in_force[-1]
        return RolledBack([roll_back_rollout(engine, newest.id, actor=actor, now=now)])
    current = latest_release(engine)
    parent = (
        None
        if current is None or current.parent_id is None
        else get_release(engine, current.parent_id)
    )
    if current is None or parent is None:
        raise RolloutError("nothing to roll back: no rollout in force and no parent release")
    parent_config = AppConfig.model_validate(parent.config)
    plans, restart = release_rollback_plans(AppConfig.model_validate(current.config), parent_config)
    release_config_out(app_config_yaml(parent_config))
    details = {"action": "release", "from_release": current.id, "to_release": parent.id}
    if plans:
        pinned = pin_versions(engine, plans, actor=actor, now=now, details=details)
    else:
        pinned = []
        event = AuditEvent(
            kind="rollback", ts=now, actor=actor, decision="release", details=details
        )
        append(engine, [event], now=now)
    return RolledBack(pinned, parent, current.id, tuple(restart))
