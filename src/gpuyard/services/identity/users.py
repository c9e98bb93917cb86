"""User administration (admins): list, create, change role / activation / password,
delete. The last active admin can be neither demoted, disabled nor deleted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.passwords import hash_password
from gpuyard.auth.roles import Role
from gpuyard.domain.emails import InvalidEmail, normalise_email
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound
from gpuyard.domain.identity import TeamMembership, User, UserAccount
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store import audit_log, identity
from gpuyard.store import teams as team_store


def valid_email(email: str) -> str:
    """The normal form of an address entering the system; 422 on ``email`` otherwise."""
    try:
        return normalise_email(email)
    except InvalidEmail as exc:
        raise InvalidInput.for_field("email", str(exc)) from None


def add_user(
    session: Session, email: str, username: str | None, password_hash: str, role: str, now: datetime
) -> User:
    """Insert a user; Conflict when the email is taken (checked under the unique index,
    so two concurrent sign-ups with one email cannot both succeed)."""
    user = identity.insert_user(
        session,
        email=email,
        username=username,
        password_hash=password_hash,
        role=role,
        created_at=now,
    )
    if user is None:
        raise Conflict(f"an account for {email} (or username) already exists")
    return user


def list_users(
    ctx: ServiceContext, role: Role | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Users (of ``role``, if given), newest first, with the total count."""
    with ctx.db.read() as session:
        return identity.list_users(session, role.value if role else None, limit, offset)


def list_accounts(
    ctx: ServiceContext, role: Role | None, is_active: bool | None, limit: int, offset: int
) -> tuple[list[UserAccount], int]:
    """Users (of ``role``, active or disabled, if given), newest first, each with their
    last login, and the total count."""
    with ctx.db.read() as session:
        users, count = identity.list_users(
            session, role.value if role else None, limit, offset, is_active
        )
        logins = audit_log.last_logins(session, [u.id for u in users])
    return [UserAccount(u, logins.get(u.id)) for u in users], count


def get_account(ctx: ServiceContext, user_id: str) -> UserAccount:
    """The user with their last login; NotFound when there is none."""
    with ctx.db.read() as session:
        user = identity.get_user(session, user_id)
        if user is None:
            raise NotFound.for_object("user", user_id)
        return UserAccount(user, audit_log.last_logins(session, [user.id]).get(user.id))


def get_user(ctx: ServiceContext, user_id: str) -> User:
    """The user; NotFound when there is none."""
    with ctx.db.read() as session:
        user = identity.get_user(session, user_id)
    if user is None:
        raise NotFound.for_object("user", user_id)
    return user


def user_teams(ctx: ServiceContext, user_id: str) -> list[TeamMembership]:
    """The teams ``user_id`` belongs to, by name."""
    with ctx.db.read() as session:
        return team_store.memberships_of(session, user_id)


def create_user(
    ctx: ServiceContext,
    caller: Caller,
    email: str,
    password: str,
    role: Role,
    username: str | None,
) -> User:
    """Create an account; Conflict when the email is taken, 422 when the username is."""
    now = ctx.now()
    email = valid_email(email)
    password_hash = hash_password(password)  # slow: outside the transaction
    with ctx.db.write() as session:
        if identity.email_taken(session, email):
            raise Conflict(f"an account for {email} already exists")
        if username and identity.username_taken(session, username):
            raise InvalidInput.for_field("username", f"{username!r} is taken")
        user = add_user(session, email, username, password_hash, role.value, now)
        details = {"email": email, "role": role.value, "username": username}
        record_audit(session, AuditActor.of(caller), "user.create", "user", user.id, now, details)
    return user


@dataclass
class UserChanges:
    """Fields of a PATCH; None means "leave as it is"."""

    role: Role | None = None
    is_active: bool | None = None
    username: str | None = None
    password: str | None = None


def update_user(ctx: ServiceContext, caller: Caller, user_id: str, changes: UserChanges) -> User:
    """Apply ``changes``; a new password also ends the user's sessions and API tokens."""
    now = ctx.now()
    new_hash = hash_password(changes.password) if changes.password is not None else None
    with ctx.db.write() as session:
        user = identity.get_user(session, user_id)
        if user is None:
            raise NotFound.for_object("user", user_id)
        demoted = changes.role is not None and changes.role is not Role.ADMIN
        disabled = changes.is_active is False
        if user.role == Role.ADMIN.value and user.is_active and (demoted or disabled):
            _keep_an_admin(session, user)
        details: dict[str, object] = {}
        if changes.role is not None and changes.role.value != user.role:
            details["role"] = {"from": user.role, "to": changes.role.value}
            user = identity.change_user(session, user.id, role=changes.role.value)
        if changes.is_active is not None and changes.is_active != user.is_active:
            details["is_active"] = changes.is_active
            user = identity.change_user(session, user.id, is_active=changes.is_active)
        if changes.username is not None and changes.username != user.username:
            if identity.username_taken(session, changes.username, other_than=user.id):
                raise InvalidInput.for_field("username", f"{changes.username!r} is taken")
            details["username"] = changes.username
            user = identity.change_user(session, user.id, username=changes.username)
        if new_hash is not None:
            # Ends every login session of the account issued before now (services/identity/auth.py
            # _resolve_session) and revokes its API tokens: whoever had the old password,
            # or a session stolen before the change, is out, including through a token
            # minted with that session.
            details["password_changed"] = True
            user = identity.change_user(
                session, user.id, password_hash=new_hash, credentials_changed_at=now
            )
            details["api_tokens_revoked"] = identity.revoke_api_tokens_of(session, user.id, now)
        record_audit(session, AuditActor.of(caller), "user.update", "user", user.id, now, details)
    ctx.callers.clear()  # a new role or a disabled account applies to the next request
    return user


def delete_user(ctx: ServiceContext, caller: Caller, user_id: str) -> None:
    """Delete an account that owns no workloads (disable it otherwise: PATCH is_active)."""
    now = ctx.now()
    with ctx.db.write() as session:
        user = identity.get_user(session, user_id)
        if user is None:
            raise NotFound.for_object("user", user_id)
        if user.role == Role.ADMIN.value and user.is_active:
            _keep_an_admin(session, user)
        owned = identity.count_workloads_owned(session, user.id)
        if owned:
            raise Conflict(
                f"{user.email} owns {owned} workload(s); delete them first, or disable the "
                "account instead (PATCH is_active=false)"
            )
        details = {"email": user.email, "role": user.role}
        record_audit(session, AuditActor.of(caller), "user.delete", "user", user.id, now, details)
        identity.delete_user(session, user.id)
    ctx.callers.clear()


def _keep_an_admin(session: Session, leaving: User) -> None:
    if not identity.count_other_active_users(session, Role.ADMIN.value, other_than=leaving.id):
        raise Conflict(f"{leaving.email} is the last active admin; make another admin first")
