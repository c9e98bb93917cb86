"""User administration (admins): list, create, change role / activation / password,
delete. The last active admin can be neither demoted, disabled nor deleted."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.passwords import hash_password
from gpuyard.auth.roles import Role
from gpuyard.domain.emails import InvalidEmail, email_lookup_keys, normalise_email
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.identity_tables import TeamMemberRow, TeamRow, UserRow
from gpuyard.store.token_tables import ApiTokenRow
from gpuyard.store.workload_tables import WorkloadRow


def email_taken(session: Session, email: str) -> bool:
    """Whether an account exists under any form of ``email`` (domain/emails.py)."""
    query = select(UserRow.id).where(func.lower(UserRow.email).in_(email_lookup_keys(email)))
    return session.scalar(query) is not None


def valid_email(email: str) -> str:
    """The normal form of an address entering the system; 422 on ``email`` otherwise."""
    try:
        return normalise_email(email)
    except InvalidEmail as exc:
        raise InvalidInput.for_field("email", str(exc)) from None


def add_user_row(session: Session, user: UserRow) -> None:
    """Insert ``user``; Conflict when the email is taken (checked under the unique index,
    so two concurrent sign-ups with one email cannot both succeed)."""
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise Conflict(f"an account for {user.email} (or username) already exists") from exc


def _username_taken(session: Session, username: str, other_than: str | None = None) -> bool:
    query = select(UserRow.id).where(UserRow.username == username)
    if other_than is not None:
        query = query.where(UserRow.id != other_than)
    return session.scalar(query) is not None


def list_users(
    ctx: ServiceContext, role: Role | None, limit: int, offset: int
) -> tuple[list[UserRow], int]:
    query = select(UserRow)
    if role is not None:
        query = query.where(UserRow.role == role.value)
    with ctx.db.read() as session:
        count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(UserRow.created_at.desc(), UserRow.id).limit(limit).offset(offset)
        ).all()
        return list(rows), count


def get_user(ctx: ServiceContext, user_id: str) -> UserRow:
    with ctx.db.read() as session:
        row = session.get(UserRow, user_id)
        if row is None:
            raise NotFound.for_object("user", user_id)
        return row


@dataclass(frozen=True)
class TeamMembership:
    team: TeamRow
    is_team_admin: bool


def user_teams(ctx: ServiceContext, user_id: str) -> list[TeamMembership]:
    with ctx.db.read() as session:
        rows = session.execute(
            select(TeamRow, TeamMemberRow.is_team_admin)
            .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
            .where(TeamMemberRow.user_id == user_id)
            .order_by(TeamRow.name)
        ).all()
        return [TeamMembership(team, bool(is_admin)) for team, is_admin in rows]


def create_user(
    ctx: ServiceContext,
    caller: Caller,
    email: str,
    password: str,
    role: Role,
    username: str | None,
) -> UserRow:
    now = ctx.now()
    email = valid_email(email)
    password_hash = hash_password(password)  # slow: outside the transaction
    with ctx.db.write() as session:
        if email_taken(session, email):
            raise Conflict(f"an account for {email} already exists")
        if username and _username_taken(session, username):
            raise InvalidInput.for_field("username", f"{username!r} is taken")
        row = UserRow(
            email=email,
            username=username,
            password_hash=password_hash,
            role=role.value,
            created_at=now,
        )
        add_user_row(session, row)
        details = {"email": email, "role": role.value, "username": username}
        record_audit(session, AuditActor.of(caller), "user.create", "user", row.id, now, details)
    return row


@dataclass
class UserChanges:
    """Fields of a PATCH; None means "leave as it is"."""

    role: Role | None = None
    is_active: bool | None = None
    username: str | None = None
    password: str | None = None


def update_user(ctx: ServiceContext, caller: Caller, user_id: str, changes: UserChanges) -> UserRow:
    now = ctx.now()
    new_hash = hash_password(changes.password) if changes.password is not None else None
    with ctx.db.write() as session:
        row = session.get(UserRow, user_id)
        if row is None:
            raise NotFound.for_object("user", user_id)
        demoted = changes.role is not None and changes.role is not Role.ADMIN
        disabled = changes.is_active is False
        if row.role == Role.ADMIN.value and row.is_active and (demoted or disabled):
            _keep_an_admin(session, row)
        details: dict[str, object] = {}
        if changes.role is not None and changes.role.value != row.role:
            details["role"] = {"from": row.role, "to": changes.role.value}
            row.role = changes.role.value
        if changes.is_active is not None and changes.is_active != row.is_active:
            details["is_active"] = changes.is_active
            row.is_active = changes.is_active
        if changes.username is not None and changes.username != row.username:
            if _username_taken(session, changes.username, other_than=row.id):
                raise InvalidInput.for_field("username", f"{changes.username!r} is taken")
            details["username"] = changes.username
            row.username = changes.username
        if new_hash is not None:
            # Ends every login session of the account issued before now (services/identity/auth.py
            # _resolve_session) and revokes its API tokens: whoever had the old password,
            # or a session stolen before the change, is out, including through a token
            # minted with that session.
            details["password_changed"] = True
            row.password_hash = new_hash
            row.credentials_changed_at = now
            revoked = session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.user_id == row.id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
            details["api_tokens_revoked"] = revoked.rowcount  # type: ignore[attr-defined]
        record_audit(session, AuditActor.of(caller), "user.update", "user", row.id, now, details)
    ctx.callers.clear()  # a new role or a disabled account applies to the next request
    return row


def delete_user(ctx: ServiceContext, caller: Caller, user_id: str) -> None:
    """Delete an account that owns no workloads (disable it otherwise: PATCH is_active)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = session.get(UserRow, user_id)
        if row is None:
            raise NotFound.for_object("user", user_id)
        if row.role == Role.ADMIN.value and row.is_active:
            _keep_an_admin(session, row)
        owned = session.scalar(
            select(func.count()).select_from(WorkloadRow).where(WorkloadRow.owner_id == row.id)
        )
        if owned:
            raise Conflict(
                f"{row.email} owns {owned} workload(s); delete them first, or disable the "
                "account instead (PATCH is_active=false)"
            )
        details = {"email": row.email, "role": row.role}
        record_audit(session, AuditActor.of(caller), "user.delete", "user", row.id, now, details)
        session.delete(row)
    ctx.callers.clear()


def _keep_an_admin(session: Session, leaving: UserRow) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(UserRow)
        .where(
            UserRow.role == Role.ADMIN.value,
            UserRow.is_active.is_(True),
            UserRow.id != leaving.id,
        )
    )
    if not others:
        raise Conflict(f"{leaving.email} is the last active admin; make another admin first")
