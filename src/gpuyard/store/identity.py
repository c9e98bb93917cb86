"""The identity repository: users, teams and their members, team invitations, invites,
API tokens and revoked login sessions.

Every function takes the caller's Session and never commits (the service owns the
transaction); what is returned is a read model (domain/identity.py) built inside that
session, never a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from gpuyard.domain.emails import email_lookup_keys
from gpuyard.domain.identity import (
    ApiToken,
    Invite,
    MyInvitation,
    PendingInvitation,
    Team,
    TeamInvitation,
    TeamMember,
    TeamMembership,
    TeamRole,
    User,
)
from gpuyard.store.base import as_utc, as_utc_or_none
from gpuyard.store.identity_tables import (
    InviteRow,
    TeamInvitationRow,
    TeamMemberRow,
    TeamRow,
    UserRow,
)
from gpuyard.store.token_tables import ApiTokenRow, RevokedSessionRow
from gpuyard.store.workload_tables import WorkloadRow

# --- users -------------------------------------------------------------------------------


def user_of(row: UserRow) -> User:
    """The read model of a user row."""
    return User(
        id=row.id,
        email=row.email,
        username=row.username,
        role=row.role,
        is_active=row.is_active,
        created_at=as_utc(row.created_at),
        credentials_changed_at=as_utc_or_none(row.credentials_changed_at),
    )


def get_user(session: Session, user_id: str) -> User | None:
    """The user, or None when there is none."""
    row = session.get(UserRow, user_id)
    return user_of(row) if row is not None else None


def list_users(
    session: Session, role: str | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Users (of ``role``, if given), newest first, with the total count."""
    query = select(UserRow)
    if role is not None:
        query = query.where(UserRow.role == role)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(UserRow.created_at.desc(), UserRow.id).limit(limit).offset(offset)
    )
    return [user_of(row) for row in rows], count


def count_users(session: Session) -> int:
    """How many users there are."""
    return session.scalar(select(func.count()).select_from(UserRow)) or 0


def email_taken(session: Session, email: str) -> bool:
    """Whether an account exists under any form of ``email`` (domain/emails.py)."""
    query = select(UserRow.id).where(func.lower(UserRow.email).in_(email_lookup_keys(email)))
    return session.scalar(query) is not None


def username_taken(session: Session, username: str, other_than: str | None = None) -> bool:
    """Whether a user (other than ``other_than``) has ``username``."""
    query = select(UserRow.id).where(UserRow.username == username)
    if other_than is not None:
        query = query.where(UserRow.id != other_than)
    return session.scalar(query) is not None


def insert_user(
    session: Session,
    *,
    email: str,
    username: str | None,
    password_hash: str,
    role: str,
    created_at: datetime,
) -> User | None:
    """Insert a user; None when the email or username is taken (checked under the unique
    indexes, in a savepoint, so two concurrent sign-ups with one email cannot both
    succeed and the caller's transaction goes on)."""
    row = UserRow(
        email=email,
        username=username,
        password_hash=password_hash,
        role=role,
        created_at=created_at,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return user_of(row)


def login_account(session: Session, email_keys: Iterable[str]) -> tuple[User, str] | None:
    """The account stored under any of ``email_keys`` (lower-cased forms of one address),
    with its password hash; the oldest id when several forms match."""
    row = session.scalars(
        select(UserRow).where(func.lower(UserRow.email).in_(list(email_keys))).order_by(UserRow.id)
    ).first()
    return (user_of(row), row.password_hash) if row is not None else None


def set_password_hash(session: Session, user_id: str, password_hash: str) -> None:
    """Replace the user's password hash."""
    session.execute(
        update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
    )


def change_user(session: Session, user_id: str, **values: Any) -> User:
    """Set columns of a user (role, is_active, username, password_hash,
    credentials_changed_at) and return it as changed; the user must exist."""
    row = session.get_one(UserRow, user_id)
    for name, value in values.items():
        setattr(row, name, value)
    return user_of(row)


def delete_user(session: Session, user_id: str) -> None:
    """Delete the user, if there is one."""
    row = session.get(UserRow, user_id)
    if row is not None:
        session.delete(row)


def count_other_active_users(session: Session, role: str, other_than: str) -> int:
    """Active users with ``role``, not counting ``other_than``."""
    return (
        session.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(UserRow.role == role, UserRow.is_active.is_(True), UserRow.id != other_than)
        )
        or 0
    )


def count_workloads_owned(session: Session, user_id: str) -> int:
    """How many workloads ``user_id`` owns."""
    return (
        session.scalar(
            select(func.count()).select_from(WorkloadRow).where(WorkloadRow.owner_id == user_id)
        )
        or 0
    )


def existing_user_ids(session: Session, user_ids: Iterable[str]) -> set[str]:
    """Those of ``user_ids`` that name a user."""
    return set(session.scalars(select(UserRow.id).where(UserRow.id.in_(list(user_ids)))))


# --- teams and members -------------------------------------------------------------------


def team_of(row: TeamRow) -> Team:
    """The read model of a team row."""
    return Team(
        id=row.id,
        name=row.name,
        quota_cpu_milli=row.quota_cpu_milli,
        quota_ram_mib=row.quota_ram_mib,
        quota_gpu_milli=row.quota_gpu_milli,
        members_can_read=row.members_can_read,
        created_at=as_utc(row.created_at),
    )


def get_team(session: Session, team_id: str) -> Team | None:
    """The team, or None when there is none."""
    row = session.get(TeamRow, team_id)
    return team_of(row) if row is not None else None


def lock_team(session: Session, team_id: str) -> Team | None:
    """The team, its row locked until the transaction ends (PostgreSQL: FOR UPDATE;
    SQLite lets one writer in at a time anyway)."""
    row = session.get(TeamRow, team_id, with_for_update=True, populate_existing=True)
    return team_of(row) if row is not None else None


def team_name_taken(session: Session, name: str, other_than: str | None = None) -> bool:
    """Whether a team (other than ``other_than``) is named ``name``."""
    query = select(TeamRow.id).where(TeamRow.name == name)
    if other_than is not None:
        query = query.where(TeamRow.id != other_than)
    return session.scalar(query) is not None


def insert_team(
    session: Session,
    *,
    name: str,
    quota_cpu_milli: int | None,
    quota_ram_mib: int | None,
    quota_gpu_milli: int | None,
    members_can_read: bool,
    created_at: datetime,
) -> Team:
    """Insert a team (no members yet) and return it."""
    row = TeamRow(
        name=name,
        quota_cpu_milli=quota_cpu_milli,
        quota_ram_mib=quota_ram_mib,
        quota_gpu_milli=quota_gpu_milli,
        members_can_read=members_can_read,
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return team_of(row)


def change_team(session: Session, team_id: str, **values: Any) -> Team:
    """Set columns of a team (name, quota_*, members_can_read); the team must exist."""
    row = session.get_one(TeamRow, team_id)
    for name, value in values.items():
        setattr(row, name, value)
    return team_of(row)


def list_teams(
    session: Session, visible: ColumnElement[bool], limit: int, offset: int
) -> tuple[list[Team], int]:
    """The teams matching ``visible`` (services/identity/access.py), by name, with the
    total count."""
    query = select(TeamRow).where(visible)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(TeamRow.name).limit(limit).offset(offset))
    return [team_of(row) for row in rows], count


def teams_of_member(user_id: str, *, admin_only: bool = False) -> ColumnElement[bool]:
    """WHERE clause on teams: those ``user_id`` belongs to (runs, with ``admin_only``)."""
    mine = select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == user_id)
    if admin_only:
        mine = mine.where(TeamMemberRow.is_team_admin.is_(True))
    return TeamRow.id.in_(mine)


def team_ids_readable_by_members(user_id: str) -> Select[str]:
    """Subquery: the ids of the teams ``user_id`` belongs to that let members read each
    other's work."""
    return (
        select(TeamMemberRow.team_id)
        .join(TeamRow, TeamRow.id == TeamMemberRow.team_id)
        .where(TeamMemberRow.user_id == user_id, TeamRow.members_can_read.is_(True))
    )


def team_roles(session: Session, user_id: str) -> list[TeamRole]:
    """The teams ``user_id`` belongs to, as the permission policy sees them."""
    rows = session.execute(
        select(TeamMemberRow.team_id, TeamMemberRow.is_team_admin, TeamRow.members_can_read)
        .join(TeamRow, TeamRow.id == TeamMemberRow.team_id)
        .where(TeamMemberRow.user_id == user_id)
    ).all()
    return [TeamRole(team_id, is_admin, readable) for team_id, is_admin, readable in rows]


def memberships_of(session: Session, user_id: str) -> list[TeamMembership]:
    """The teams ``user_id`` belongs to, by name."""
    rows = session.execute(
        select(TeamRow, TeamMemberRow.is_team_admin)
        .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
        .where(TeamMemberRow.user_id == user_id)
        .order_by(TeamRow.name)
    ).all()
    return [TeamMembership(team_of(team), bool(is_admin)) for team, is_admin in rows]


def members_of(session: Session, team_ids: list[str]) -> dict[str, list[TeamMember]]:
    """The members of each of ``team_ids``, by email."""
    rows = session.execute(
        select(TeamMemberRow.team_id, UserRow.id, UserRow.email, TeamMemberRow.is_team_admin)
        .join(UserRow, UserRow.id == TeamMemberRow.user_id)
        .where(TeamMemberRow.team_id.in_(team_ids))
        .order_by(UserRow.email)
    ).all()
    members: dict[str, list[TeamMember]] = {t: [] for t in team_ids}
    for team_id, user_id, email, is_admin in rows:
        members[team_id].append(TeamMember(user_id, email, bool(is_admin)))
    return members


def member_ids(session: Session, team_id: str) -> set[str]:
    """The ids of the team's members."""
    return set(
        session.scalars(select(TeamMemberRow.user_id).where(TeamMemberRow.team_id == team_id))
    )


def replace_members(session: Session, team_id: str, members: Iterable[tuple[str, bool]]) -> None:
    """Make ``members`` ((user id, is team admin) pairs) the team's members."""
    session.execute(delete(TeamMemberRow).where(TeamMemberRow.team_id == team_id))
    for user_id, is_admin in members:
        session.add(TeamMemberRow(team_id=team_id, user_id=user_id, is_team_admin=is_admin))


def add_member(session: Session, team_id: str, user_id: str) -> None:
    """Make ``user_id`` a plain member of ``team_id`` (who is not a member yet)."""
    session.add(TeamMemberRow(team_id=team_id, user_id=user_id))


def join_team(session: Session, team_id: str, user_id: str, is_team_admin: bool) -> bool:
    """Make ``user_id`` a member of ``team_id``; one who already is keeps the higher of the
    two admin flags. Returns whether they are a team admin now."""
    member = session.get(TeamMemberRow, (team_id, user_id))
    if member is None:
        member = TeamMemberRow(team_id=team_id, user_id=user_id, is_team_admin=is_team_admin)
        session.add(member)
    else:
        member.is_team_admin = member.is_team_admin or is_team_admin
    return bool(member.is_team_admin)


# --- team invitations --------------------------------------------------------------------


def team_invitation_of(row: TeamInvitationRow) -> TeamInvitation:
    """The read model of a team invitation row."""
    return TeamInvitation(
        id=row.id,
        team_id=row.team_id,
        user_id=row.user_id,
        is_team_admin=row.is_team_admin,
        invited_by=row.invited_by,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
    )


def get_team_invitation(
    session: Session, invitation_id: str, *, refresh: bool = False
) -> TeamInvitation | None:
    """The invitation; ``refresh`` reads it again even if the session has it already."""
    row = session.get(TeamInvitationRow, invitation_id, populate_existing=refresh)
    return team_invitation_of(row) if row is not None else None


def put_team_invitation(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    is_team_admin: bool,
    invited_by: str,
    now: datetime,
    expires_at: datetime,
) -> tuple[TeamInvitation, bool]:
    """Invite ``user_id`` into ``team_id``, or renew their pending invitation (its expiry,
    inviter and is_team_admin are replaced). Returns it, and whether it was renewed."""
    row = session.scalar(
        select(TeamInvitationRow).where(
            TeamInvitationRow.team_id == team_id, TeamInvitationRow.user_id == user_id
        )
    )
    renewed = row is not None
    if row is None:
        row = TeamInvitationRow(team_id=team_id, user_id=user_id, created_at=now)
        session.add(row)
    row.is_team_admin = is_team_admin
    row.invited_by = invited_by
    row.expires_at = expires_at
    session.flush()
    return team_invitation_of(row), renewed


def delete_team_invitation(session: Session, invitation_id: str) -> None:
    """Delete the team invitation, if there is one."""
    row = session.get(TeamInvitationRow, invitation_id)
    if row is not None:
        session.delete(row)


def drop_team_invitations(session: Session, team_id: str, user_ids: list[str]) -> None:
    """Delete the invitations of ``user_ids`` into ``team_id``."""
    if user_ids:
        session.execute(
            delete(TeamInvitationRow).where(
                TeamInvitationRow.team_id == team_id, TeamInvitationRow.user_id.in_(user_ids)
            )
        )


def pending_invitations(
    session: Session, team_ids: list[str], now: datetime
) -> dict[str, list[PendingInvitation]]:
    """Unexpired invitations per team, by the invited user's email."""
    pending: dict[str, list[PendingInvitation]] = {t: [] for t in team_ids}
    if not team_ids:
        return pending
    rows = session.execute(
        select(TeamInvitationRow, UserRow.email)
        .join(UserRow, UserRow.id == TeamInvitationRow.user_id)
        .where(TeamInvitationRow.team_id.in_(team_ids), TeamInvitationRow.expires_at > now)
        .order_by(UserRow.email)
    ).all()
    for row, email in rows:
        pending[row.team_id].append(
            PendingInvitation(
                id=row.id,
                user_id=row.user_id,
                email=email,
                is_team_admin=row.is_team_admin,
                invited_by=row.invited_by,
                created_at=as_utc(row.created_at),
                expires_at=as_utc(row.expires_at),
            )
        )
    return pending


def invitations_of_user(
    session: Session, user_id: str, now: datetime, limit: int, offset: int
) -> tuple[list[MyInvitation], int]:
    """The user's unexpired invitations, newest first, with the total count."""
    inviter = aliased(UserRow)
    query = (
        select(TeamInvitationRow, TeamRow.name, inviter.email)
        .join(TeamRow, TeamRow.id == TeamInvitationRow.team_id)
        .outerjoin(inviter, inviter.id == TeamInvitationRow.invited_by)
        .where(TeamInvitationRow.user_id == user_id, TeamInvitationRow.expires_at > now)
    )
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(TeamInvitationRow.created_at.desc(), TeamInvitationRow.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        MyInvitation(
            id=row.id,
            team_id=row.team_id,
            team_name=team_name,
            is_team_admin=row.is_team_admin,
            invited_by_email=inviter_email,
            created_at=as_utc(row.created_at),
            expires_at=as_utc(row.expires_at),
        )
        for row, team_name, inviter_email in rows
    ], count


# --- invites -----------------------------------------------------------------------------


def invite_of(row: InviteRow) -> Invite:
    """The read model of an invite row."""
    return Invite(
        id=row.id,
        email=row.email,
        role=row.role,
        team_id=row.team_id,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        used_at=as_utc_or_none(row.used_at),
        used_by=row.used_by,
    )


def insert_invite(
    session: Session,
    *,
    code_hash: str,
    email: str,
    role: str,
    team_id: str | None,
    created_by: str,
    created_at: datetime,
    expires_at: datetime,
) -> Invite:
    """Insert an invite (``code_hash``: the digest of its code) and return it."""
    row = InviteRow(
        code_hash=code_hash,
        email=email,
        role=role,
        team_id=team_id,
        created_by=created_by,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return invite_of(row)


def invite_by_code_hash(session: Session, code_hash: str) -> Invite | None:
    """The invite whose code has the digest ``code_hash``, or None."""
    row = session.scalar(select(InviteRow).where(InviteRow.code_hash == code_hash))
    return invite_of(row) if row is not None else None


def claim_invite(session: Session, invite_id: str, now: datetime) -> bool:
    """Mark the invite used (compare-and-set on used_at); False when it already was. A
    concurrent claimant waits on the row (PostgreSQL) or on the write lock (SQLite)."""
    claimed = session.execute(
        update(InviteRow)
        .where(InviteRow.id == invite_id, InviteRow.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def set_invite_used_by(session: Session, invite_id: str, user_id: str) -> None:
    """Record which user signed up with the invite; the invite must exist."""
    row = session.get_one(InviteRow, invite_id)
    row.used_by = user_id


# --- API tokens and login sessions -------------------------------------------------------


def api_token_of(row: ApiTokenRow) -> ApiToken:
    """The read model of an API token row."""
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        display_prefix=row.display_prefix,
        created_at=as_utc(row.created_at),
        expires_at=as_utc_or_none(row.expires_at),
        last_used_at=as_utc_or_none(row.last_used_at),
        revoked_at=as_utc_or_none(row.revoked_at),
    )


def count_active_api_tokens(session: Session, user_id: str) -> int:
    """The user's tokens that are not revoked (expired ones included)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ApiTokenRow)
            .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        )
        or 0
    )


def insert_api_token(
    session: Session,
    *,
    user_id: str,
    name: str,
    token_hash: str,
    display_prefix: str,
    created_at: datetime,
    expires_at: datetime | None,
) -> ApiToken:
    """Insert an API token (``token_hash``: the token's digest) and return it."""
    row = ApiTokenRow(
        user_id=user_id,
        name=name,
        token_hash=token_hash,
        display_prefix=display_prefix,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return api_token_of(row)


def active_api_tokens(session: Session, user_id: str) -> list[ApiToken]:
    """The user's tokens that are not revoked (expired ones included), newest first."""
    rows = session.scalars(
        select(ApiTokenRow)
        .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        .order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
    )
    return [api_token_of(row) for row in rows]


def get_api_token(session: Session, token_id: str) -> ApiToken | None:
    """The API token, or None when there is none."""
    row = session.get(ApiTokenRow, token_id)
    return api_token_of(row) if row is not None else None


def api_token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    """The API token whose digest is ``token_hash``, or None."""
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash))
    return api_token_of(row) if row is not None else None


def revoke_api_token(session: Session, token_id: str, now: datetime) -> None:
    """Mark the token revoked at ``now``; the token must exist."""
    row = session.get_one(ApiTokenRow, token_id)
    row.revoked_at = now


def revoke_api_tokens_of(session: Session, user_id: str, now: datetime) -> int:
    """Revoke every unrevoked token of ``user_id``; returns how many."""
    revoked = session.execute(
        update(ApiTokenRow)
        .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(revoked.rowcount)  # type: ignore[attr-defined]


def mark_api_token_used(session: Session, token_id: str, now: datetime) -> None:
    """Set the token's last use to ``now``."""
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now))


def session_revoked(session: Session, jti: str) -> bool:
    """Whether the login session ``jti`` was logged out."""
    return session.get(RevokedSessionRow, jti) is not None


def revoke_login_session(
    session: Session, jti: str, user_id: str, expires_at: datetime, now: datetime
) -> None:
    """Refuse the login session ``jti`` from now on (kept until it would expire anyway);
    forget revocations whose sessions have expired meanwhile."""
    session.execute(delete(RevokedSessionRow).where(RevokedSessionRow.expires_at <= now))
    if session.get(RevokedSessionRow, jti) is None:
        session.add(RevokedSessionRow(jti=jti, user_id=user_id, expires_at=expires_at))
