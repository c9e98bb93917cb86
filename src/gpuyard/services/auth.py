"""Logging in and resolving the caller of a request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from gpuyard.auth.caller import Caller
from gpuyard.auth.passwords import hash_password, needs_rehash, verify_password
from gpuyard.auth.roles import Role
from gpuyard.auth.tokens import decode_access_token, issue_access_token
from gpuyard.domain.errors import Unauthenticated
from gpuyard.services.context import ServiceContext
from gpuyard.store.identity_tables import UserRow

_BAD_LOGIN = "invalid email or password"


def login(ctx: ServiceContext, email: str, password: str) -> tuple[str, datetime, UserRow]:
    """Check credentials; the same error (and timing) for an unknown user and a wrong
    password, so the answer does not reveal which accounts exist."""
    with ctx.db.write() as session:
        user = session.scalar(select(UserRow).where(func.lower(UserRow.email) == email.lower()))
        ok = verify_password(password, user.password_hash if user else None)
        if user is None or not ok or not user.is_active:
            raise Unauthenticated(_BAD_LOGIN)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
    token, expires_at = issue_access_token(
        ctx.secret_key, user.id, ctx.settings.access_token_minutes
    )
    return token, expires_at, user


def resolve_caller(ctx: ServiceContext, token: str) -> Caller:
    claims = decode_access_token(ctx.secret_key, token)
    with ctx.db.read() as session:
        user = session.get(UserRow, claims.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("the account behind this token no longer exists")
        return Caller(user_id=user.id, email=user.email, role=Role(user.role))


def get_user(ctx: ServiceContext, user_id: str) -> UserRow | None:
    with ctx.db.read() as session:
        return session.get(UserRow, user_id)
