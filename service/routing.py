"""Routing policy: which model name and version serves a request (endpoint, tenant, region)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.config import ModelRef, RouteConfig
from service.errors import ServiceError

LATEST = "latest"
REGION_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_REGION = re.compile(REGION_PATTERN)


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
