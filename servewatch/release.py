"""Releases: a configuration whose routes are pinned to model versions, packed into a Bento.

`latest` is resolved once, here, when a release is built; the release's configuration names
explicit versions only, so a service started from it never resolves `latest` (a version
registered later cannot go live on a restart). Each release is a row of the store's
`releases` table and an audit event, written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from core.config import AppConfig, ModelRef, app_config_yaml
from core.contracts import AuditEvent
from core.files import write_atomically
from storage.engine import Engine
from storage.releases import ReleaseRecord, insert_release, latest_release

LATEST = "latest"
BENTOFILE = "bentofile.yaml"
BUILD_DIR = Path("build/release")  # relative to the project root, the Bento's build context
CONFIG_NAME = "servewatch.yaml"
REQUIREMENTS_NAME = "requirements.txt"

# (model name, version or `latest`) -> the exact version; raises LookupError when unknown.
VersionResolver = Callable[[str, str], str]


class ReleaseError(Exception):
    """A release cannot be built (an unknown model version, a failed export or build)."""


def pin_routing(config: AppConfig, resolve: VersionResolver) -> AppConfig:
    """`config` with every route's model reference resolved to an exact, existing version."""
    resolved: dict[tuple[str, str], str] = {}

    def version(ref: ModelRef) -> dict[str, str]:
        key = (ref.model, ref.version)
        if key not in resolved:
            try:
                resolved[key] = resolve(ref.model, ref.version)
            except LookupError as exc:
                raise ReleaseError(f"{ref.model}:{ref.version} cannot be pinned: {exc}") from exc
        return {"version": resolved[key]}

    routing = {
        endpoint: route.model_copy(
            update={
                "default": route.default.model_copy(update=version(route.default)),
                "rules": [rule.model_copy(update=version(rule)) for rule in route.rules],
            }
        )
        for endpoint, route in config.routing.items()
    }
    return config.model_copy(update={"routing": routing})


def _refs(config: AppConfig) -> Iterator[ModelRef]:
    for route in config.routing.values():
        yield route.default
        yield from route.rules


def unpinned_routes(config: AppConfig) -> list[str]:
    """The endpoints whose default or a rule still says `latest` (empty for a release)."""
    return sorted(
        endpoint
        for endpoint, route in config.routing.items()
        if any(ref.version == LATEST for ref in (route.default, *route.rules))
    )


def model_tags(config: AppConfig) -> list[str]:
    """Every `name:version` the routes name, sorted, once each."""
    return sorted({f"{ref.model}:{ref.version}" for ref in _refs(config)})


def canonical_config(config: AppConfig) -> dict[str, Any]:
    """The configuration as JSON-ready data (what the digest covers and the store keeps)."""
    return config.model_dump(mode="json", by_alias=True)


def config_digest(config: AppConfig) -> str:
    """SHA-256 of the canonical configuration (sorted keys, no whitespace)."""
    text = json.dumps(canonical_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def export_requirements(root: Path) -> str:
    """The locked runtime dependencies as requirements.txt, from uv.lock (no network)."""
    command = ["uv", "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"]
    command += ["--no-header", "--offline"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReleaseError(f"uv export failed: {result.stderr.strip()}")
    return result.stdout


def bentofile(root: Path, tags: list[str]) -> dict[str, Any]:
    """The project's bentofile.yaml with `models:` set to the release's pinned tags."""
    spec: dict[str, Any] = yaml.safe_load((root / BENTOFILE).read_text())
    spec["models"] = list(tags)
    return spec


def write_build_inputs(root: Path, config: AppConfig, requirements: str) -> Path:
    """Write the pinned configuration, the requirements and the release's bentofile under
    `root`/build/release; the bentofile's path."""
    if unpinned_routes(config):
        raise ReleaseError(f"routes still on latest: {', '.join(unpinned_routes(config))}")
    out = root / BUILD_DIR
    write_atomically(out / CONFIG_NAME, app_config_yaml(config))
    write_atomically(out / REQUIREMENTS_NAME, requirements)
    spec = bentofile(root, model_tags(config))
    write_atomically(out / BENTOFILE, yaml.safe_dump(spec, sort_keys=False))
    return out / BENTOFILE


# The Bento is built with the largest service graph (the split topology, the bulk route's model
# service apart): serving a Bento, BentoML looks up every service the imported graph holds in
# the Bento's bento.yaml (`Service.on_load_bento`, StopIteration for one it lacks), while a
# smaller graph served from it (single, split without the bulk service) needs nothing more.
BUILD_GRAPH_ENV = {"SERVEWATCH_TOPOLOGY": "split", "SERVEWATCH_BULK_MODEL_SERVICE": "true"}


def build_bento(root: Path, bentofile_path: Path, models_home: Path) -> str:
    """Run `bentoml build` on the release's bentofile; the Bento's tag."""
    env = {**os.environ, "BENTOML_HOME": str(models_home.resolve())}
    env["BENTOML_DO_NOT_TRACK"] = "true"
    env.update(BUILD_GRAPH_ENV)
    command = ["bentoml", "build", "-f", str(bentofile_path), "--output", "tag", str(root)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    tag = next((ln for ln in result.stdout.splitlines() if ln.startswith("__tag__:")), None)
    if result.returncode != 0 or tag is None:
        raise ReleaseError(f"bentoml build failed: {(result.stderr or result.stdout).strip()}")
    return tag.removeprefix("__tag__:")


@dataclass(frozen=True)
class BuiltRelease:
    """What `record_release` stored."""

    release_id: int
    parent_id: int | None
    bento_tag: str | None
    model_tags: list[str]
    config_digest: str


def record_release(
    engine: Engine,
    config: AppConfig,
    *,
    bento_tag: str | None,
    actor: str,
    now: datetime,
    checks: dict[str, Any] | None = None,
) -> BuiltRelease:
    """Store a built release over the newest one, with its `release` audit event (its details
    hold `checks`: the checks' verdicts, or that they were skipped)."""
    parent = latest_release(engine)
    tags, digest = model_tags(config), config_digest(config)
    details: dict[str, Any] = {"action": "built", "bento_tag": bento_tag, "model_tags": tags}
    if checks is not None:
        details["checks"] = checks
    event = AuditEvent(kind="release", ts=now, actor=actor, details={**details, "digest": digest})
    release_id = insert_release(
        engine,
        bento_tag=bento_tag,
        model_tags=tags,
        config_digest=digest,
        config=canonical_config(config),
        parent_id=None if parent is None else parent.id,
        created_at=now,
        created_by=actor,
        audit=event,
    )
    parent_id = None if parent is None else parent.id
    return BuiltRelease(release_id, parent_id, bento_tag, tags, digest)


# -- comparing releases --------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two releases: a model tag, a route or another config key."""

    area: str  # "model", "route" or "config"
    key: str
    before: Any
    after: Any


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def diff_releases(before: ReleaseRecord, after: ReleaseRecord) -> list[Change]:
    """What changed from `before` to `after`: model tags added or removed, then the config
    keys (routes apart from the rest), each sorted."""
    old_tags, new_tags = set(before.model_tags), set(after.model_tags)
    changes = [Change("model", tag, None, tag) for tag in sorted(new_tags - old_tags)]
    changes += [Change("model", tag, tag, None) for tag in sorted(old_tags - new_tags)]
    old, new = _flatten(before.config), _flatten(after.config)
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            area = "route" if key.startswith("routing.") else "config"
            changes.append(Change(area, key, old.get(key), new.get(key)))
    return changes
