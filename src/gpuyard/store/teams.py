"""The teams repository: teams, their members and team invitations.

Every function takes the caller's Session and never commits (the service owns the
transaction); what is returned is a read model (domain/identity.py) built inside that
session, never a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.orm import Session, aliased

from gpuyard.domain.identity import (
    MyInvitation,
    PendingInvitation,
    Team,
    TeamInvitation,
    TeamMember,
    TeamMembership,
    TeamRole,
)
from gpuyard.store.base import as_utc
from gpuyard.store.identity_tables import (
    TeamInvitationRow,
    TeamMemberRow,
    TeamRow,
    UserRow,
)

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
        max_priority=row.max_priority,
        parent_id=row.parent_id,
        guarantee_cpu_milli=row.guarantee_cpu_milli,
        guarantee_ram_mib=row.guarantee_ram_mib,
        guarantee_storage_mib=row.guarantee_storage_mib,
        guarantee_gpu_milli=row.guarantee_gpu_milli,
        guarantee_gpu_models=tuple(
            sorted((str(m), int(v)) for m, v in (row.guarantee_gpu_models or {}).items())
        ),
        limit_gpu_models=tuple(
            sorted((str(m), int(v)) for m, v in (row.limit_gpu_models or {}).items())
        ),
        quota_weight=row.quota_weight,
        quota_weights=_weights(row.quota_weights),
        weight_gpu_models=_weights(row.weight_gpu_models),
    )


def _weights(stored: object) -> tuple[tuple[str, int], ...]:
    """A stored {name: weight} as sorted pairs; entries that are not a positive integer
    weight are skipped (the service validates what it writes, so one bad row written by
    hand must not break reading every team)."""
    if not isinstance(stored, dict):
        return ()
    return tuple(
        sorted(
            (str(name), value)
            for name, value in stored.items()
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
        )
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


def team_names(session: Session, team_ids: Iterable[str]) -> dict[str, str]:
    """{team id: name} of ``team_ids``, in one query."""
    ids = set(team_ids)
    if not ids:
        return {}
    rows = session.execute(select(TeamRow.id, TeamRow.name).where(TeamRow.id.in_(ids)))
    return {row.id: row.name for row in rows}


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
    max_priority: int | None = None,
) -> Team:
    """Insert a team (no members yet) and return it."""
    row = TeamRow(
        name=name,
        quota_cpu_milli=quota_cpu_milli,
        quota_ram_mib=quota_ram_mib,
        quota_gpu_milli=quota_gpu_milli,
        members_can_read=members_can_read,
        created_at=created_at,
        max_priority=max_priority,
    )
    session.add(row)
    session.flush()
    return team_of(row)


def change_team(session: Session, team_id: str, **values: Any) -> Team:
    """Set columns of a team (name, quota_*, max_priority, members_can_read, parent_id,
    guarantee_*, the limits and weights of the quota tree); the team must exist."""
    row = session.get_one(TeamRow, team_id)
    for name, value in values.items():
        setattr(row, name, value)
    return team_of(row)


def team_parents(session: Session) -> dict[str, str | None]:
    """{team id: parent id} of every team (the quota tree, for validating a change)."""
    return {row.id: row.parent_id for row in session.execute(select(TeamRow.id, TeamRow.parent_id))}


def all_teams(session: Session) -> list[Team]:
    """Every team, by name (the fair-share view; teams are few)."""
    return [team_of(row) for row in session.scalars(select(TeamRow).order_by(TeamRow.name))]


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


def member_team_ids(session: Session, user_id: str) -> set[str]:
    """The ids of the teams ``user_id`` belongs to."""
    return set(
        session.scalars(select(TeamMemberRow.team_id).where(TeamMemberRow.user_id == user_id))
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
