"""Logging in and out, and resolving the caller of a request from a JWT or an API token."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gpuyard.auth.caller import Caller, Credential, CredentialKind
from gpuyard.auth.opaque_tokens import digest, is_api_token
from gpuyard.auth.passwords import hash_password, needs_rehash, verify_password
from gpuyard.auth.roles import Role
from gpuyard.auth.tokens import AccessToken, decode_access_token, issue_access_token
from gpuyard.domain.audit import LOGIN_ACTION
from gpuyard.domain.emails import email_lookup_keys, login_key
from gpuyard.domain.errors import Conflict, Unauthenticated
from gpuyard.domain.identity import User
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store import identity

_BAD_LOGIN = "invalid email or password"
#: last_used_at of an API token is refreshed at most this often (it costs a write).
_TOKEN_USE_RESOLUTION = timedelta(minutes=10)


@dataclass(frozen=True)
class LoginResult:
    access: AccessToken
    user: User


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
        found = identity.login_account(session, keys)
    user, password_hash = found if found is not None else (None, None)
    # argon2 takes tens of milliseconds: never inside a write transaction.
    ok = verify_password(password, password_hash)
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
    new_hash = hash_password(password) if password_hash and needs_rehash(password_hash) else None
    access = issue_access_token(ctx.secret_key, user.id, ctx.settings.access_token_minutes, now)
    with ctx.db.write() as session:
        if new_hash is not None:
            identity.set_password_hash(session, user.id, new_hash)
        record_audit(
            session,
            AuditActor(user.id, user.email, ip),
            LOGIN_ACTION,
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
        identity.revoke_login_session(
            session, credential.id, caller.user_id, credential.expires_at or now, now
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
    """The caller behind ``token`` if it was resolved recently, without the database.
    Never a routing host's credential (services/routing/login.py shares the cache): that
    one opens routes only, so the API must not find it here."""
    caller = ctx.callers.get(token, ctx.now())
    if caller is not None and _route_only(caller):
        return None
    if caller is None or caller.ip == ip:
        return caller
    return replace(caller, ip=ip)


def _route_only(caller: Caller) -> bool:
    return caller.credential is not None and caller.credential.kind is CredentialKind.ROUTE


def _resolve_session(ctx: ServiceContext, token: str, now: datetime) -> Caller:
    claims = decode_access_token(ctx.secret_key, token, now)
    with ctx.db.read() as session:
        if identity.session_revoked(session, claims.jti):
            raise Unauthenticated("this session was logged out; log in again")
        user = identity.get_user(session, claims.user_id)
    changed = user.credentials_changed_at if user is not None else None
    if changed is not None and (claims.issued_at is None or claims.issued_at < changed):
        # iat carries microseconds (auth/tokens.py): a login just after the change passes.
        raise Unauthenticated("the password changed after this session began; log in again")
    credential = Credential(CredentialKind.SESSION, claims.jti, claims.expires_at)
    return _caller(user, None, credential)


def _resolve_api_token(ctx: ServiceContext, token: str) -> Caller:
    now = ctx.now()
    with ctx.db.read() as session:
        found = identity.api_token_by_hash(session, digest(token))
        if found is None or found.revoked_at is not None:
            raise Unauthenticated("invalid or revoked API token")
        expires_at = found.expires_at
        if expires_at is not None and expires_at <= now:
            raise Unauthenticated("API token expired; create a new one")
        user = identity.get_user(session, found.user_id)
    last_used = found.last_used_at
    if last_used is None or now - last_used >= _TOKEN_USE_RESOLUTION:
        with ctx.db.write() as session:
            identity.mark_api_token_used(session, found.id, now)
    return _caller(user, None, Credential(CredentialKind.API_TOKEN, found.id, expires_at))


def _caller(user: User | None, ip: str | None, credential: Credential) -> Caller:
    if user is None or not user.is_active:
        raise Unauthenticated("the account behind this token no longer exists or is disabled")
    return Caller(
        user_id=user.id, email=user.email, role=Role(user.role), ip=ip, credential=credential
    )
