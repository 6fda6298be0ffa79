import pytest

from core.config import AppConfig, TenantConfig, hash_api_key
from service.auth import authenticate, authorize, bearer_key
from service.errors import ServiceError

CONFIG = AppConfig(
    tenants={
        "acme": TenantConfig(api_key_sha256=[hash_api_key("acme-key")]),
        "globex": TenantConfig(
            api_key_sha256=[hash_api_key("globex-key"), hash_api_key("globex-key-2")],
            endpoints=["classify_ticket"],
        ),
    }
)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("Bearer " + "k" * 513, None),
    ],
)
def test_bearer_key(header, key):
    assert bearer_key(header) == key


def test_known_keys_resolve_to_their_tenant():
    assert authenticate("Bearer acme-key", CONFIG) == "acme"
    assert authenticate("Bearer globex-key-2", CONFIG) == "globex"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Token acme-key"])
def test_missing_or_unknown_keys_are_unauthorized(header):
    with pytest.raises(ServiceError) as excinfo:
        authenticate(header, CONFIG)
    assert (excinfo.value.code, excinfo.value.status) == ("unauthorized", 401)


def test_tenants_may_only_call_their_endpoints():
    authorize("acme", "predict_risk", CONFIG)
    authorize("globex", "classify_ticket", CONFIG)
    for tenant, endpoint in [("globex", "predict_risk"), ("nobody", "classify_ticket")]:
        with pytest.raises(ServiceError) as excinfo:
            authorize(tenant, endpoint, CONFIG)
        assert (excinfo.value.code, excinfo.value.status) == ("forbidden", 403)
