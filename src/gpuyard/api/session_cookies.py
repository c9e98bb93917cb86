"""The dashboard's session cookies: the JWT in an httpOnly, SameSite=Strict cookie sent
only to /api, plus a readable CSRF cookie whose value unsafe requests echo in the
X-CSRF-Token header (double submit; checked in api/authorization.py)."""

from __future__ import annotations

import secrets
from datetime import datetime

from fastapi import Response

from gpuyard.api.authorization import CSRF_COOKIE, SESSION_COOKIE
from gpuyard.auth.tokens import AccessToken

_SESSION_PATH = "/api"


def set_session_cookies(
    response: Response, access: AccessToken, now: datetime, *, secure: bool
) -> str:
    """Set both cookies; returns the CSRF token."""
    csrf = secrets.token_urlsafe(32)
    max_age = max(1, int((access.expires_at - now).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        access.token,
        max_age=max_age,
        path=_SESSION_PATH,
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
    response.delete_cookie(
        SESSION_COOKIE, path=_SESSION_PATH, httponly=True, samesite="strict", secure=secure
    )
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict", secure=secure)
