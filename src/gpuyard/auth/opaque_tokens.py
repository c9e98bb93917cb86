"""High-entropy random secrets that are shown once and stored only as a SHA-256 digest:
API tokens (``gpy_...``) and invite codes (``gpyinv_...``).

A plain SHA-256 is enough here (unlike passwords): the values carry 256 random bits, so
nobody can guess one from its digest, and a digest lookup is a unique-index probe.
"""

from __future__ import annotations

import hashlib
import secrets

API_TOKEN_PREFIX = "gpy_"  # noqa: S105 - a prefix, not a secret
INVITE_CODE_PREFIX = "gpyinv_"
#: How much of a token is kept in clear so users can tell their tokens apart.
DISPLAY_PREFIX_LENGTH = 12


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_invite_code() -> str:
    return INVITE_CODE_PREFIX + secrets.token_urlsafe(24)


def is_api_token(value: str) -> bool:
    return value.startswith(API_TOKEN_PREFIX)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_PREFIX_LENGTH]
