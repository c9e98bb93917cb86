"""Logging in to routes served on a host name of their own (docs/operations.md,
"Cookie scope and the same-origin risk").

The dashboard's session cookie is host-only, so a browser does not send it to a routing
host such as ``apps.example.com``. nginx sends such a visitor (401 from the authorize
check) to ``GET /api/v1/routing/login?next=<route URL>`` on the dashboard, which

1. checks that ``next`` is a URL under ``GPUYARD_ROUTING_PUBLIC_URL``'s ``/u/`` (never an
   open redirect);
2. without a dashboard session, sends the browser to the dashboard's login page, which
   comes back here afterwards;
3. with one, mints a ticket (auth/route_tokens.py: signed, a minute, bound to the user,
   the session and ``next``) and sends the browser to ``<routing URL>/_gpuyard/session``.

nginx passes that path to ``GET /api/v1/routing/session``, which redeems the ticket once
(its id joins the revoked sessions, so a replay is refused), sets the routing host's
``gpuyard_route`` cookie and sends the browser on to ``next``. The authorize check accepts
that cookie (:func:`route_caller`); nothing else in the API does.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from gpuyard.auth.caller import Caller, Credential, CredentialKind
from gpuyard.auth.opaque_tokens import is_api_token
from gpuyard.auth.roles import Role
from gpuyard.auth.route_tokens import (
    MAX_ROUTE_TOKEN,
    ROUTE_AUDIENCE,
    TICKET_AUDIENCE,
    TICKET_SECONDS,
    RouteClaims,
    decode_route_token,
    issue_route_token,
)
from gpuyard.auth.tokens import AccessClaims, decode_access_token
from gpuyard.domain.errors import FieldError, InvalidInput, NotFound, Unauthenticated
from gpuyard.domain.routing import ROUTE_PREFIX
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.auth import resolve_caller
from gpuyard.store import identity

#: The routing host's cookie (host-only, Path=/u, httpOnly, SameSite=Lax).
ROUTE_COOKIE = "gpuyard_route"
#: Where nginx's routing server takes tickets (services/routing/config.py).
SESSION_LOCATION = "/_gpuyard/session"
SESSION_PATH = "/api/v1/routing/session"
LOGIN_PATH = "/api/v1/routing/login"
#: Longest ``next`` accepted (a route URL plus a path inside it).
MAX_NEXT = 2048
#: Characters of a URL as nginx writes it into the redirect: printable ASCII, no spaces,
#: no backslash (browsers read it as a slash), no quotes.
_URL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


@dataclass(frozen=True)
class RouteSession:
    """A redeemed ticket: the route credential, when it ends, and where to go now."""

    token: str
    expires_at: datetime
    next_url: str
    secure: bool


def login_configured(ctx: ServiceContext) -> bool:
    """Whether routes have a URL of their own and nginx knows the dashboard's: the two
    settings the login flow needs."""
    s = ctx.settings
    return bool(s.routing_public_url and s.routing_dashboard_url)


def _routing_url(ctx: ServiceContext) -> str:
    """The routing URL when the login flow is configured; NotFound otherwise."""
    base = ctx.settings.routing_public_url
    if not login_configured(ctx) or base is None:
        raise NotFound(
            "routes have no login flow here: set GPUYARD_ROUTING_PUBLIC_URL and "
            "GPUYARD_ROUTING_DASHBOARD_URL (docs/operations.md)"
        )
    return base


def check_next(ctx: ServiceContext, next_url: str | None) -> str:
    """``next_url`` when it is a URL under the routing URL's ``/u/``; InvalidInput naming
    ``next`` otherwise (never an open redirect). NotFound without the login flow."""
    base = _routing_url(ctx)
    want = f"a URL under {base}{ROUTE_PREFIX} ({MAX_NEXT} characters at most)"
    if not next_url or len(next_url) > MAX_NEXT or not set(next_url) <= _URL_CHARACTERS:
        raise InvalidInput(f"next: {want}", [FieldError("next", want)])
    parts, home = urlsplit(next_url), urlsplit(base)
    if (
        parts.scheme != home.scheme
        or parts.netloc != home.netloc
        or not parts.path.startswith(f"{home.path}{ROUTE_PREFIX}")
        or "/../" in f"{parts.path}/"
        or parts.fragment
    ):
        raise InvalidInput(f"next: {want}", [FieldError("next", want)])
    return next_url


def login_redirect(ctx: ServiceContext, session_token: str | None, next_url: str | None) -> str:
    """Where the browser goes from ``GET /routing/login``: the dashboard's login page (no
    valid session in ``session_token``, the dashboard's cookie) or the routing host's
    ticket location, with a fresh ticket for ``next_url`` (checked first)."""
    checked = check_next(ctx, next_url)
    caller_session = _dashboard_session(ctx, session_token)
    if caller_session is None:
        back = f"{LOGIN_PATH}?{urlencode({'next': checked})}"
        return f"/login?{urlencode({'next': back})}"
    now = ctx.now()
    ticket, _claims = issue_route_token(
        ctx.secret_key,
        audience=TICKET_AUDIENCE,
        user_id=caller_session.user_id,
        session_id=caller_session.jti,
        session_expires_at=caller_session.expires_at,
        session_issued_at=caller_session.issued_at,
        expires_at=now + timedelta(seconds=TICKET_SECONDS),
        next_url=checked,
    )
    return f"{ctx.settings.routing_public_url}{SESSION_LOCATION}?{urlencode({'ticket': ticket})}"


def redeem_ticket(ctx: ServiceContext, ticket: str | None) -> RouteSession:
    """Exchange a ticket for a route credential, once: a second redemption, an expired or
    forged ticket, a session logged out or an account disabled meanwhile are refused
    (Unauthenticated naming ``ticket``)."""
    _routing_url(ctx)  # the same 404 as the login without the flow
    if not ticket or len(ticket) > MAX_ROUTE_TOKEN:
        message = f"a ticket from {LOGIN_PATH} ({MAX_ROUTE_TOKEN} characters at most)"
        raise InvalidInput(f"ticket: {message}", [FieldError("ticket", message)])
    now = ctx.now()
    try:
        claims = decode_route_token(ctx.secret_key, ticket, audience=TICKET_AUDIENCE, now=now)
        _check_session(ctx, claims)
    except Unauthenticated as exc:
        raise _ticket_refused(exc.detail) from exc
    with ctx.db.write() as session:
        first = identity.use_once(session, claims.jti, claims.user_id, claims.expires_at, now)
    if not first:  # used before, or at the same moment by another request
        raise _ticket_refused("this ticket was used already; open the route again")
    token, _credential = issue_route_token(
        ctx.secret_key,
        audience=ROUTE_AUDIENCE,
        user_id=claims.user_id,
        session_id=claims.session_id,
        session_expires_at=claims.session_expires_at,
        session_issued_at=claims.session_issued_at,
        expires_at=claims.session_expires_at,
    )
    secure = urlsplit(ctx.settings.routing_public_url or "").scheme == "https"
    return RouteSession(token, claims.session_expires_at, claims.next_url, secure)


def route_caller(ctx: ServiceContext, token: str, ip: str | None) -> Caller:
    """The caller behind a ``gpuyard_route`` cookie: good for the authorize check only.
    Refused (Unauthenticated) once its session is logged out, the password changed or
    the account is disabled; recently resolved ones come from ``ctx.callers``."""
    found = ctx.callers.get(token, ctx.now())
    if (
        found is not None
        and found.credential is not None
        and found.credential.kind is CredentialKind.ROUTE
    ):
        return replace(found, ip=ip)
    generation = ctx.callers.generation
    claims = decode_route_token(ctx.secret_key, token, audience=ROUTE_AUDIENCE, now=ctx.now())
    caller = _check_session(ctx, claims)
    ctx.callers.put(token, caller, ctx.now(), generation)
    return replace(caller, ip=ip)


def _check_session(ctx: ServiceContext, claims: RouteClaims) -> Caller:
    with ctx.db.read() as session:
        if identity.session_revoked(session, claims.session_id):
            raise Unauthenticated("the dashboard session behind this was logged out; log in again")
        user = identity.get_user(session, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("the account behind this no longer exists or is disabled")
    changed = user.credentials_changed_at
    if changed is not None and (
        claims.session_issued_at is None or claims.session_issued_at < changed
    ):
        raise Unauthenticated("the password changed after this session began; log in again")
    credential = Credential(CredentialKind.ROUTE, claims.jti, claims.session_expires_at)
    return Caller(
        user_id=user.id, email=user.email, role=Role(user.role), ip=None, credential=credential
    )


def _ticket_refused(message: str) -> Unauthenticated:
    return Unauthenticated(f"ticket: {message}", [FieldError("ticket", message)])


def _dashboard_session(ctx: ServiceContext, token: str | None) -> AccessClaims | None:
    """The dashboard session in ``token`` (the session cookie) when it is valid now: not
    logged out, its account active; None otherwise (the browser logs in first)."""
    if not token or len(token) > MAX_ROUTE_TOKEN or is_api_token(token):
        return None
    try:
        resolve_caller(ctx, token, None)  # revocation, password change, disabled account
        return decode_access_token(ctx.secret_key, token, ctx.now())
    except Unauthenticated:
        return None
