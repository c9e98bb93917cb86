"""Logging in and out, and resolving the caller of a request from a JWT or an API token."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from gpuyard.auth.caller import Caller, Credential, CredentialKind
from gpuyard.auth.opaque_tokens import digest, is_api_token
from gpuyard.auth.passwords import hash_password, needs_rehash, verify_password
from gpuyard.auth.roles import Role
from gpuyard.auth.tokens import AccessToken, decode_access_token, issue_access_token
from gpuyard.domain.emails import email_lookup_keys, login_key
from gpuyard.domain.errors import Conflict, Unauthenticated
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.base import as_utc
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.token_tables import ApiTokenRow, RevokedSessionRow

_BAD_LOGIN = "invalid email or password"
#: last_used_at of an API token is refreshed at most this often (it costs a write).
_TOKEN_USE_RESOLUTION = timedelta(minutes=10)


@dataclass(frozen=True)
class LoginResult:
    access: AccessToken
    user: UserRow


def login(ctx: ServiceContext, email: str, password: str, ip: str | None) -> LoginResult:
    """Check credentials; the same error (and timing) for an unknown user, a wrong
    password and a deactivated account, so the answer does not reveal which accounts
    exist. Throttled per address, per account and address, and per account
    (auth/login_throttle.py). The email is normalised as when accounts are made
    (domain/emails.py), and accounts stored by earlier versions are found too."""
    now = ctx.now()
    keys = email_lookup_keys(email)
    account = login_key(email)  # throttled and audited under one name per address
    attempt = ctx.login_throttle.begin_attempt(ip, account, now.timestamp())
    with ctx.db.read() as session:
        user = session.scalars(
            select(UserRow).where(func.lower(UserRow.email).in_(keys)).order_by(UserRow.id)
        ).first()
    # argon2 takes tens of milliseconds: never inside a write transaction.
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        with ctx.db.write() as session:
            record_audit(
                session,
                AuditActor(None, account, ip),
                "auth.login_failed",
                "user",
                user.id if user else None,
                now,
            )
        raise Unauthenticated(_BAD_LOGIN)
    ctx.login_throttle.succeeded(attempt)
    new_hash = hash_password(password) if needs_rehash(user.password_hash) else None
    access = issue_access_token(ctx.secret_key, user.id, ctx.settings.access_token_minutes, now)
    with ctx.db.write() as session:
        if new_hash is not None:
            session.execute(
                update(UserRow).where(UserRow.id == user.id).values(password_hash=new_hash)
            )
        record_audit(
            session,
            AuditActor(user.id, user.email, ip),
            "auth.login",
            "user",
            user.id,
            now,
            {"expires_at": access.expires_at.isoformat()},
        )
    return LoginResult(access=access, user=user)


def logout(ctx: ServiceContext, caller: Caller) -> None:
    """End the session that made this request: its JWT id is refused from now on."""
    credential = caller.credential
    if credential is None or credential.kind is not CredentialKind.SESSION:
        raise Conflict(
            "this request used an API token, not a login session; revoke the token with "
            "DELETE /api/v1/tokens/{id}"
        )
    now = ctx.now()
    with ctx.db.write() as session:
        session.execute(delete(RevokedSessionRow).where(RevokedSessionRow.expires_at <= now))
        if session.get(RevokedSessionRow, credential.id) is None:
            session.add(
                RevokedSessionRow(
                    jti=credential.id,
                    user_id=caller.user_id,
                    expires_at=credential.expires_at or now,
                )
            )
        record_audit(session, AuditActor.of(caller), "auth.logout", "user", caller.user_id, now)
    ctx.callers.clear()


def resolve_caller(ctx: ServiceContext, token: str, ip: str | None) -> Caller:
    """The caller behind a bearer token (a JWT or a ``gpy_`` API token); recently
    resolved tokens come from ``ctx.callers`` (auth/caller_cache.py)."""
    found = recent_caller(ctx, token, ip)
    if found is not None:
        return found
    now = ctx.now()
    generation = ctx.callers.generation  # before reading: a clear meanwhile voids the put
    if is_api_token(token):
        caller = _resolve_api_token(ctx, token)
    else:
        caller = _resolve_session(ctx, token, now)
    ctx.callers.put(token, caller, now, generation)
    return replace(caller, ip=ip)


def recent_caller(ctx: ServiceContext, token: str, ip: str | None) -> Caller | None:
    """The caller behind ``token`` if it was resolved recently, without the database."""
    caller = ctx.callers.get(token, ctx.now())
    if caller is None or caller.ip == ip:
        return caller
    return replace(caller, ip=ip)


def _resolve_session(ctx: ServiceContext, token: str, now: datetime) -> Caller:
    claims = decode_access_token(ctx.secret_key, token, now)
    with ctx.db.read() as session:
        if session.get(RevokedSessionRow, claims.jti) is not None:
            raise Unauthenticated("this session was logged out; log in again")
        user = session.get(UserRow, claims.user_id)
    changed = user.credentials_changed_at if user is not None else None
    if changed is not None and (claims.issued_at is None or claims.issued_at < as_utc(changed)):
        # iat carries microseconds (auth/tokens.py): a login just after the change passes.
        raise Unauthenticated("the password changed after this session began; log in again")
    credential = Credential(CredentialKind.SESSION, claims.jti, claims.expires_at)
    return _caller(user, None, credential)


def _resolve_api_token(ctx: ServiceContext, token: str) -> Caller:
    now = ctx.now()
    with ctx.db.read() as session:
        row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest(token)))
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("invalid or revoked API token")
        expires_at = as_utc(row.expires_at) if row.expires_at else None
        if expires_at is not None and expires_at <= now:
            raise Unauthenticated("API token expired; create a new one")
        user = session.get(UserRow, row.user_id)
    last_used = as_utc(row.last_used_at) if row.last_used_at else None
    if last_used is None or now - last_used >= _TOKEN_USE_RESOLUTION:
        with ctx.db.write() as session:
            session.execute(
                update(ApiTokenRow).where(ApiTokenRow.id == row.id).values(last_used_at=now)
            )
    return _caller(user, None, Credential(CredentialKind.API_TOKEN, row.id, expires_at))


def _caller(user: UserRow | None, ip: str | None, credential: Credential) -> Caller:
    if user is None or not user.is_active:
        raise Unauthenticated("the account behind this token no longer exists or is disabled")
    return Caller(
        user_id=user.id, email=user.email, role=Role(user.role), ip=ip, credential=credential
    )
