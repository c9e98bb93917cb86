"""The Prometheus scrapers' bearer token (GPUYARD_METRICS_TOKEN), checked in constant time."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr


def scraper_token_matches(expected: SecretStr | None, presented: str) -> bool:
    """Whether ``presented`` is the configured scraper token (never, when none is set).
    Both sides are hashed first, so the comparison takes the same time whatever the
    presented token's length or how much of it matches."""
    if expected is None:
        return False
    want = hashlib.sha256(expected.get_secret_value().encode()).digest()
    got = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(want, got)
