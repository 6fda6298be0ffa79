"""Input digests for the audit log, and the key they are made with."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.config import ConfigError, Settings
from core.digest import input_hmac

KEY = b"k" * 32


def test_the_digest_is_an_hmac_of_the_canonical_json():
    expected = hmac.new(KEY, b'{"a":1,"b":2}', hashlib.sha256).hexdigest()
    assert input_hmac(KEY, {"b": 2, "a": 1}) == expected
    assert input_hmac(KEY, "ticket") != input_hmac(b"o" * 32, "ticket")


def test_the_key_comes_from_a_file_before_the_variable(tmp_path):
    secret = tmp_path / "audit.key"
    secret.write_bytes(b"from-the-file-0123456789\n")
    settings = Settings(audit_key_file=secret, audit_key="from-the-variable-0123456789")
    assert settings.audit_hmac_key() == b"from-the-file-0123456789"
    assert Settings(audit_key="from-the-variable-0123456789").audit_hmac_key() == (
        b"from-the-variable-0123456789"
    )
    assert Settings().audit_hmac_key() is None


def test_the_key_never_shows_in_the_settings_or_their_errors(tmp_path):
    settings = Settings(audit_key="a-secret-that-must-not-leak")
    assert "a-secret-that-must-not-leak" not in repr(settings)
    assert "a-secret-that-must-not-leak" not in str(settings.model_dump())
    with pytest.raises(ConfigError, match="at least 16 bytes") as error:
        Settings(audit_key="short").audit_hmac_key()
    assert "short" not in str(error.value).replace("at least", "")
    with pytest.raises(ConfigError, match="cannot read"):
        Settings(audit_key_file=tmp_path / "missing").audit_hmac_key()
