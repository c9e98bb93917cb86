"""Team invitations: how a user joins a team without a global admin adding them.

Joining a team lets the team's admins read the user's later work there, so it takes the
user's consent. A team admin who lists a user who is not yet a member (services/identity/teams.py)
makes an invitation instead of a membership; listing the user again renews it. The
invited user accepts it (the membership starts, and the invitation goes, in one
transaction) or declines it; a team admin or an admin may cancel it. Only the invited user
may answer: to anyone else an invitation does not exist (404). An expired invitation
cannot be accepted (409) and is left out of every list.

Every change to a team's members takes the team's row lock first (see :func:`lock_team`),
so invitations and memberships of one team never race each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Target, allows
from gpuyard.domain.errors import Conflict, NotFound
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import check_object
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.base import as_utc
from gpuyard.store.identity_tables import TeamInvitationRow, TeamMemberRow, TeamRow, UserRow

_KIND = "team invitation"


@dataclass(frozen=True)
class PendingInvitation:
    """An invitation as its team's admins see it."""

    id: str
    user_id: str
    email: str
    is_team_admin: bool
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class MyInvitation:
    """An invitation as the invited user sees it."""

    id: str
    team_id: str
    team_name: str
    is_team_admin: bool
    invited_by_email: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class JoinedTeam:
    team: TeamRow
    is_team_admin: bool


def lock_team(session: Session, team_id: str) -> TeamRow | None:
    """The team's row, locked until the transaction ends (PostgreSQL: FOR UPDATE; SQLite
    lets one writer in at a time anyway)."""
    return session.get(TeamRow, team_id, with_for_update=True, populate_existing=True)


def invite(
    session: Session,
    caller: Caller,
    team_id: str,
    user_id: str,
    is_team_admin: bool,
    now: datetime,
    ttl: timedelta,
) -> TeamInvitationRow:
    """Invite ``user_id`` into ``team_id`` (whose row the caller has locked), or renew the
    pending invitation: its expiry restarts and its is_team_admin is replaced."""
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
    row.invited_by = caller.user_id
    row.expires_at = now + ttl
    session.flush()
    record_audit(
        session,
        AuditActor.of(caller),
        "team.invite",
        "team",
        team_id,
        now,
        {
            "invitation_id": row.id,
            "user_id": user_id,
            "is_team_admin": is_team_admin,
            "expires_at": row.expires_at.isoformat(),
            "renewed": renewed,
        },
    )
    return row


def drop_invitations(session: Session, team_id: str, user_ids: list[str]) -> None:
    """Forget the invitations of users who just became members another way."""
    if user_ids:
        session.execute(
            delete(TeamInvitationRow).where(
                TeamInvitationRow.team_id == team_id, TeamInvitationRow.user_id.in_(user_ids)
            )
        )


def pending_of_teams(
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


def list_my_invitations(
    ctx: ServiceContext, caller: Caller, limit: int, offset: int
) -> tuple[list[MyInvitation], int]:
    """The caller's unexpired invitations, newest first."""
    inviter = aliased(UserRow)
    query = (
        select(TeamInvitationRow, TeamRow.name, inviter.email)
        .join(TeamRow, TeamRow.id == TeamInvitationRow.team_id)
        .outerjoin(inviter, inviter.id == TeamInvitationRow.invited_by)
        .where(
            TeamInvitationRow.user_id == caller.user_id, TeamInvitationRow.expires_at > ctx.now()
        )
    )
    with ctx.db.read() as session:
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


def _own_invitation(
    session: Session, caller: Caller, invitation_id: str, *, refresh: bool = False
) -> TeamInvitationRow:
    """The invitation, if it is the caller's; NotFound otherwise (nobody else learns that
    it exists, admins included: an admin adds members directly instead)."""
    row = session.get(TeamInvitationRow, invitation_id, populate_existing=refresh)
    if row is None or not allows(
        caller.role, caller.user_id, Permission.TEAM_JOIN, Target(owner_id=row.user_id)
    ):
        raise NotFound.for_object(_KIND, invitation_id)
    return row


def accept_invitation(ctx: ServiceContext, caller: Caller, invitation_id: str) -> JoinedTeam:
    """Join the team: the membership is made and the invitation deleted atomically."""
    now = ctx.now()
    with ctx.db.write() as session:
        found = _own_invitation(session, caller, invitation_id)
        team = lock_team(session, found.team_id)
        # Read again under the team's lock: a team admin may have renewed or cancelled it.
        row = _own_invitation(session, caller, invitation_id, refresh=True)
        if team is None:  # pragma: no cover - the invitation goes with its team
            raise NotFound.for_object(_KIND, invitation_id)
        expires_at = as_utc(row.expires_at)
        if expires_at <= now:
            raise Conflict(
                f"this invitation to team {team.name!r} expired at "
                f"{expires_at.isoformat(timespec='seconds')}; ask a team admin to invite you again"
            )
        member = session.get(TeamMemberRow, (team.id, caller.user_id))
        if member is None:
            member = TeamMemberRow(
                team_id=team.id, user_id=caller.user_id, is_team_admin=row.is_team_admin
            )
            session.add(member)
        else:  # made a member meanwhile by an admin: keep the higher of the two
            member.is_team_admin = member.is_team_admin or row.is_team_admin
        details = {
            "invitation_id": row.id,
            "user_id": caller.user_id,
            "is_team_admin": member.is_team_admin,
            "invited_by": row.invited_by,
        }
        session.delete(row)
        record_audit(
            session, AuditActor.of(caller), "team.invite_accepted", "team", team.id, now, details
        )
        return JoinedTeam(team, bool(member.is_team_admin))


def decline_invitation(ctx: ServiceContext, caller: Caller, invitation_id: str) -> None:
    """Refuse the invitation (expired ones too): it is deleted."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _own_invitation(session, caller, invitation_id)
        details = {"invitation_id": row.id, "user_id": row.user_id, "invited_by": row.invited_by}
        team_id = row.team_id
        session.delete(row)
        record_audit(
            session, AuditActor.of(caller), "team.invite_declined", "team", team_id, now, details
        )


def cancel_invitation(
    ctx: ServiceContext, caller: Caller, team_id: str, invitation_id: str
) -> None:
    """A team admin (or an admin) withdraws a pending invitation of their team."""
    now = ctx.now()
    with ctx.db.write() as session:
        if lock_team(session, team_id) is None:
            raise NotFound.for_object("team", team_id)
        check_object(
            session,
            caller,
            Permission.TEAM_MANAGE,
            Target(team_id=team_id),
            read=Permission.TEAM_READ,
            kind="team",
            object_id=team_id,
        )
        row = session.get(TeamInvitationRow, invitation_id)
        if row is None or row.team_id != team_id:
            raise NotFound.for_object(_KIND, invitation_id)
        details = {"invitation_id": row.id, "user_id": row.user_id}
        session.delete(row)
        record_audit(
            session, AuditActor.of(caller), "team.invite_cancelled", "team", team_id, now, details
        )
