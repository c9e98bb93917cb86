"""Short-lived access tokens (JWT, HS256) for logged-in users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from gpuyard.domain.errors import Unauthenticated

_ALGORITHM = "HS256"
_AUDIENCE = "gpuyard"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    expires_at: datetime


def issue_access_token(secret: str, user_id: str, minutes: int) -> tuple[str, datetime]:
    expires_at = datetime.now(UTC) + timedelta(minutes=minutes)
    token = jwt.encode(
        {"sub": user_id, "exp": expires_at, "iat": datetime.now(UTC), "aud": _AUDIENCE},
        secret,
        algorithm=_ALGORITHM,
    )
    return token, expires_at


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Validate signature, audience and expiry; raise Unauthenticated otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], audience=_AUDIENCE)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("access token expired; log in again") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid access token") from exc
    return AccessClaims(
        user_id=str(claims["sub"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC)
    )
