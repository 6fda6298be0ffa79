"""Tenants from API keys (`Authorization: Bearer <key>`) and the endpoints each may call."""

from __future__ import annotations

from core.config import AppConfig
from service.errors import ServiceError

MAX_KEY_LENGTH = 512


def bearer_key(authorization: str | None) -> str | None:
    """The key of a `Bearer` authorization header value, or None."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > MAX_KEY_LENGTH:
        return None
    return key


def authenticate(authorization: str | None, config: AppConfig) -> str:
    """The tenant owning the request's API key; `unauthorized` when missing or unknown."""
    key = bearer_key(authorization)
    if key is None:
        raise ServiceError("unauthorized", "missing API key: send Authorization: Bearer <key>")
    tenant = config.tenant_for_key(key)
    if tenant is None:
        raise ServiceError("unauthorized", "unknown API key")
    return tenant


def authorize(tenant: str, endpoint: str, config: AppConfig) -> None:
    """`forbidden` unless `tenant` may call `endpoint`."""
    tenant_config = config.tenants.get(tenant)
    if tenant_config is None or not tenant_config.allows(endpoint):
        raise ServiceError("forbidden", f"tenant {tenant!r} may not call {endpoint}")
