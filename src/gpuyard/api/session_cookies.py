"""The dashboard's session cookies: the JWT in an httpOnly, SameSite=Strict cookie sent
only to /api and to per-user routes under /u (nginx's auth_request forwards it to
GET /api/v1/routing/authorize; nginx strips it before proxying to a workload), plus a
readable CSRF cookie whose value unsafe requests echo in the X-CSRF-Token header (double
submit; checked in api/authorization.py)."""

from __future__ import annotations

import secrets
from datetime import datetime

from fastapi import Response

from gpuyard.api.authorization import CSRF_COOKIE, SESSION_COOKIE
from gpuyard.auth.tokens import AccessToken

_SESSION_PATH = "/api"
#: Per-user routes (services/routing): the same cookie, a second path. Host-only, like the
#: first: a route served on another host name does not get it (docs/operations.md).
_ROUTES_PATH = "/u"


def set_session_cookies(
    response: Response, access: AccessToken, now: datetime, *, secure: bool
) -> str:
    """Set both cookies; returns the CSRF token."""
    csrf = secrets.token_urlsafe(32)
    max_age = max(1, int((access.expires_at - now).total_seconds()))
    for path in (_SESSION_PATH, _ROUTES_PATH):
        response.set_cookie(
            SESSION_COOKIE,
            access.token,
            max_age=max_age,
            path=path,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="strict",
        secure=secure,
    )
    return csrf


def clear_session_cookies(response: Response, *, secure: bool) -> None:
    for path in (_SESSION_PATH, _ROUTES_PATH):
        response.delete_cookie(
            SESSION_COOKIE, path=path, httponly=True, samesite="strict", secure=secure
        )
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict", secure=secure)
