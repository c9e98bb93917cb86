"""Credentials of per-user routes served on a host name of their own (HS256 JWTs).

Two kinds, each with its own audience so neither is ever taken for the other nor for a
dashboard session (auth/tokens.py, audience ``gpuyard``):

- a **ticket** (audience ``gpuyard-route-ticket``): minted by the dashboard for a logged-in
  user, good for about a minute and one redemption, and carrying the route URL to land on,
  so the hop between the two host names cannot be pointed elsewhere;
- a **route credential** (audience ``gpuyard-route``): what the ticket is exchanged for,
  kept in the routing host's ``gpuyard_route`` cookie. It names the dashboard session it
  came from (``sid``) and expires with it at the latest, so logging out, a password change
  or deactivating the account ends it too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from gpuyard.domain.errors import Unauthenticated

_ALGORITHM = "HS256"
TICKET_AUDIENCE = "gpuyard-route-ticket"
ROUTE_AUDIENCE = "gpuyard-route"
#: A ticket is redeemed within a redirect or two: a minute is plenty, and short enough that
#: one that leaks (logs, history) is useless soon.
TICKET_SECONDS = 60
#: Longest ticket or route credential read (a JWT with a bounded URL in it is well under).
MAX_ROUTE_TOKEN = 4096


@dataclass(frozen=True)
class RouteClaims:
    """What a ticket or route credential says."""

    user_id: str
    #: The ticket's own id (single use); for a route credential, its id.
    jti: str
    #: The dashboard session (its JWT id) the credential came from.
    session_id: str
    #: When the dashboard session ends (the route credential's expiry, too).
    session_expires_at: datetime
    #: The session's issue time (a password change after it ends the credential).
    session_issued_at: datetime | None
    expires_at: datetime
    #: The route URL to land on (tickets only; "" in a route credential).
    next_url: str


def issue_route_token(
    secret: str,
    *,
    audience: str,
    user_id: str,
    session_id: str,
    session_expires_at: datetime,
    session_issued_at: datetime | None,
    expires_at: datetime,
    next_url: str = "",
) -> tuple[str, RouteClaims]:
    """A signed ticket or route credential (``audience``) and what it says."""
    jti = secrets.token_hex(16)
    claims = {
        "sub": user_id,
        "jti": jti,
        "sid": session_id,
        "sexp": int(session_expires_at.timestamp()),
        "siat": None if session_issued_at is None else session_issued_at.timestamp(),
        "exp": int(expires_at.timestamp()),
        "aud": audience,
        "next": next_url,
    }
    token = jwt.encode(claims, secret, algorithm=_ALGORITHM)
    return token, _claims(claims)


def decode_route_token(secret: str, token: str, *, audience: str, now: datetime) -> RouteClaims:
    """Check signature, audience and expiry; raise Unauthenticated otherwise."""
    if len(token) > MAX_ROUTE_TOKEN:
        raise Unauthenticated(f"invalid routing credential (longer than {MAX_ROUTE_TOKEN})")
    try:
        raw = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=audience,
            options={"require": ["sub", "jti", "exp", "sid", "sexp"], "verify_exp": False},
        )
        claims = _claims(raw)
    except (jwt.PyJWTError, TypeError, ValueError, KeyError, OverflowError) as exc:
        raise Unauthenticated("invalid routing credential") from exc
    if claims.expires_at <= now or claims.session_expires_at <= now:
        raise Unauthenticated("routing credential expired; open the route again to log in")
    return claims


def _claims(raw: dict[str, object]) -> RouteClaims:
    siat = raw.get("siat")
    return RouteClaims(
        user_id=str(raw["sub"]),
        jti=str(raw["jti"]),
        session_id=str(raw["sid"]),
        session_expires_at=datetime.fromtimestamp(int(str(raw["sexp"])), UTC),
        session_issued_at=None if siat is None else datetime.fromtimestamp(float(str(siat)), UTC),
        expires_at=datetime.fromtimestamp(int(str(raw["exp"])), UTC),
        next_url=str(raw.get("next") or ""),
    )
