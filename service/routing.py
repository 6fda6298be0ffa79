"""Routing policy: which model name and version serves a request (endpoint, tenant, region),
and the canary split that moves a weighted share of a baseline's requests to a candidate."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from core.config import ModelRef, RouteConfig
from service.errors import ServiceError

LATEST = "latest"
REGION_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_REGION = re.compile(REGION_PATTERN)
# A split compares a key's bucket (its hash mod this) with weight × 100: 0.01 % resolution.
SPLIT_BUCKETS = 10_000


def split_bucket(key: str, salt: int) -> int:
    """The bucket of `key` (a request id or a tenant) in a split salted with `salt`."""
    return zlib.crc32(key.encode(), salt) % SPLIT_BUCKETS


@dataclass(frozen=True)
class Split:
    """A canary on one endpoint: requests routed to the baseline within the scope go to
    `candidate` when their key's bucket is below `threshold` (weight × 100)."""

    # The route references (model, version as configured, e.g. `latest`) that serve the
    # baseline version.
    baselines: frozenset[tuple[str, str]]
    candidate: ModelRef
    threshold: int
    salt: int  # per rollout, so that each rollout picks its own requests and tenants
    sticky: bool = False  # key on the tenant (a tenant stays on one side) instead of the request
    tenant: str | None = None  # scope: None = every tenant
    region: str | None = None  # scope: None = every region

    @classmethod
    def of(
        cls,
        baselines: frozenset[tuple[str, str]],
        candidate: ModelRef,
        weight: float,
        *,
        salt: int,
        sticky: bool = False,
        tenant: str | None = None,
        region: str | None = None,
    ) -> Split:
        """A split moving `weight` percent of the baseline's requests in the scope."""
        threshold = round(weight * SPLIT_BUCKETS / 100)
        return cls(baselines, candidate, threshold, salt, sticky, tenant, region)

    def choose(
        self, ref: ModelRef, request_id: str, tenant: str | None, region: str | None
    ) -> ModelRef:
        """`candidate` for a request of the baseline inside the scope whose bucket falls under
        the weight, `ref` otherwise (anonymous requests stay on the baseline when sticky)."""
        if (ref.model, ref.version) not in self.baselines:
            return ref
        if (self.tenant is not None and tenant != self.tenant) or (
            self.region is not None and region != self.region
        ):
            return ref
        key = tenant if self.sticky else request_id
        if key is None or split_bucket(key, self.salt) >= self.threshold:
            return ref
        return self.candidate


def parse_region(value: str | None) -> str | None:
    """The `X-Region` header value (None when absent); malformed or empty -> validation_error."""
    if value is None:
        return None
    if not _REGION.fullmatch(value):
        raise ServiceError(
            "validation_error",
            "X-Region must be 1-32 characters of a-z, 0-9, '_' or '-' (starting a-z or 0-9)",
        )
    return value


class Router:
    """First matching rule of the endpoint's route wins; the route's default otherwise."""

    def __init__(self, routing: Mapping[str, RouteConfig]) -> None:
        self._routing = dict(routing)
        self._splits: dict[str, Split] = {}

    @property
    def splits(self) -> Mapping[str, Split]:
        """The canary split in force on each endpoint that has one."""
        return self._splits

    def set_splits(self, splits: Mapping[str, Split]) -> None:
        """Replace the splits in force (one assignment: a request sees the old or the new)."""
        self._splits = dict(splits)

    def route_request(
        self, endpoint: str, tenant: str | None, region: str | None, request_id: str
    ) -> ModelRef:
        """`route`, then the endpoint's canary split, if any, on the request's id or tenant."""
        ref = self.route(endpoint, tenant, region)
        split = self._splits.get(endpoint)
        return ref if split is None else split.choose(ref, request_id, tenant, region)

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(self._routing)

    def route(self, endpoint: str, tenant: str | None, region: str | None) -> ModelRef:
        """The model reference serving `endpoint` for `tenant` (None: anonymous) in `region`."""
        route = self._routing.get(endpoint)
        if route is None:
            raise ServiceError("not_found", f"no route is configured for {endpoint}")
        for rule in route.rules:
            if rule.tenant is not None and rule.tenant != tenant:
                continue
            if rule.region is not None and rule.region != region:
                continue
            return ModelRef(model=rule.model, version=rule.version)
        return route.default

    def targets(self, endpoint: str | None = None) -> list[ModelRef]:
        """Every model reference a request (to `endpoint`, default any) may be routed to, once."""
        seen: dict[tuple[str, str], ModelRef] = {}
        routes = self._routing.values() if endpoint is None else [self._routing[endpoint]]
        for route in routes:
            for ref in (route.default, *route.rules):
                key = (ref.model, ref.version)
                seen.setdefault(key, ModelRef(model=ref.model, version=ref.version))
        return list(seen.values())
