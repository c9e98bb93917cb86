"""Short-lived access tokens (JWT, HS256) for logged-in users.

Each token carries a random id (``jti``) so that logout can revoke exactly that session,
and its issue time (``iat``) to the microsecond (a JSON number with a fraction, which
RFC 7519 allows), so a session issued before a password change is told apart from one
issued just after it, even within one second.
Expiry is checked against the injected clock, not the wall clock, so tests can move time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from gpuyard.domain.errors import Unauthenticated

_ALGORITHM = "HS256"
_AUDIENCE = "gpuyard"


@dataclass(frozen=True)
class AccessToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    jti: str
    expires_at: datetime
    #: None for a token without ``iat`` (none issued by gpuyard).
    issued_at: datetime | None = None


def issue_access_token(secret: str, user_id: str, minutes: float, now: datetime) -> AccessToken:
    jti = secrets.token_hex(16)
    expires_at = now + timedelta(minutes=minutes)
    claims = {
        "sub": user_id,
        "jti": jti,
        "exp": expires_at,
        "iat": now.timestamp(),  # a float: PyJWT would cut a datetime to whole seconds
        "aud": _AUDIENCE,
    }
    token = jwt.encode(claims, secret, algorithm=_ALGORITHM)
    # JWT times are whole seconds; report what the token really says.
    expires_at = datetime.fromtimestamp(int(expires_at.timestamp()), UTC)
    return AccessToken(token=token, jti=jti, expires_at=expires_at)


def decode_access_token(secret: str, token: str, now: datetime) -> AccessClaims:
    """Validate signature, audience and expiry; raise Unauthenticated otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["sub", "jti", "exp"], "verify_exp": False, "verify_iat": False},
        )
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        iat = claims.get("iat")
        issued_at = None if iat is None else datetime.fromtimestamp(float(iat), UTC)
    except (jwt.PyJWTError, TypeError, ValueError) as exc:
        raise Unauthenticated("invalid access token") from exc
    if expires_at <= now:
        raise Unauthenticated("access token expired; log in again")
    return AccessClaims(
        user_id=str(claims["sub"]),
        jti=str(claims["jti"]),
        expires_at=expires_at,
        issued_at=issued_at,
    )
