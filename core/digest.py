"""Digests of inputs for the audit log: HMAC-SHA256 of a canonical JSON form."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def input_hmac(key: bytes, raw_input: Any) -> str:
    """Hex HMAC-SHA256 of `raw_input` as JSON with sorted keys: the same input, the same digest."""
    canonical = json.dumps(raw_input, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
