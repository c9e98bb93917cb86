"""Team invitations: how a user joins a team without a global admin adding them.

Joining a team lets the team's admins read the user's later work there, so it takes the
user's consent. A team admin who lists a user who is not yet a member (services/identity/teams.py)
makes an invitation instead of a membership; listing the user again renews it. The
invited user accepts it (the membership starts, and the invitation goes, in one
transaction) or declines it; a team admin or an admin may cancel it. Only the invited user
may answer: to anyone else an invitation does not exist (404). An expired invitation
cannot be accepted (409) and is left out of every list.

Every change to a team's members takes the team's row lock first (store.teams.lock_team),
so invitations and memberships of one team never race each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Target, allows
from gpuyard.domain.errors import Conflict, NotFound
from gpuyard.domain.identity import (
    MyInvitation,
    PendingInvitation,
    TeamInvitation,
    TeamMembership,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import check_object
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store import teams as team_store

_KIND = "team invitation"


def invite(
    session: Session,
    caller: Caller,
    team_id: str,
    user_id: str,
    is_team_admin: bool,
    now: datetime,
    ttl: timedelta,
) -> TeamInvitation:
    """Invite ``user_id`` into ``team_id`` (whose row the caller has locked), or renew the
    pending invitation: its expiry restarts and its is_team_admin is replaced."""
    expires_at = now + ttl
    invitation, renewed = team_store.put_team_invitation(
        session,
        team_id=team_id,
        user_id=user_id,
        is_team_admin=is_team_admin,
        invited_by=caller.user_id,
        now=now,
        expires_at=expires_at,
    )
    record_audit(
        session,
        AuditActor.of(caller),
        "team.invite",
        "team",
        team_id,
        now,
        {
            "invitation_id": invitation.id,
            "user_id": user_id,
            "is_team_admin": is_team_admin,
            "expires_at": expires_at.isoformat(),
            "renewed": renewed,
        },
    )
    return invitation


def pending_of_teams(
    session: Session, team_ids: list[str], now: datetime
) -> dict[str, list[PendingInvitation]]:
    """Unexpired invitations per team, by the invited user's email."""
    return team_store.pending_invitations(session, team_ids, now)


def list_my_invitations(
    ctx: ServiceContext, caller: Caller, limit: int, offset: int
) -> tuple[list[MyInvitation], int]:
    """The caller's unexpired invitations, newest first."""
    with ctx.db.read() as session:
        return team_store.invitations_of_user(session, caller.user_id, ctx.now(), limit, offset)


def _own_invitation(
    session: Session, caller: Caller, invitation_id: str, *, refresh: bool = False
) -> TeamInvitation:
    """The invitation, if it is the caller's; NotFound otherwise (nobody else learns that
    it exists, admins included: an admin adds members directly instead)."""
    found = team_store.get_team_invitation(session, invitation_id, refresh=refresh)
    if found is None or not allows(
        caller.role, caller.user_id, Permission.TEAM_JOIN, Target(owner_id=found.user_id)
    ):
        raise NotFound.for_object(_KIND, invitation_id)
    return found


def accept_invitation(ctx: ServiceContext, caller: Caller, invitation_id: str) -> TeamMembership:
    """Join the team: the membership is made and the invitation deleted atomically."""
    now = ctx.now()
    with ctx.db.write() as session:
        found = _own_invitation(session, caller, invitation_id)
        team = team_store.lock_team(session, found.team_id)
        # Read again under the team's lock: a team admin may have renewed or cancelled it.
        invitation = _own_invitation(session, caller, invitation_id, refresh=True)
        if team is None:  # pragma: no cover - the invitation goes with its team
            raise NotFound.for_object(_KIND, invitation_id)
        expires_at = invitation.expires_at
        if expires_at <= now:
            raise Conflict(
                f"this invitation to team {team.name!r} expired at "
                f"{expires_at.isoformat(timespec='seconds')}; ask a team admin to invite you again"
            )
        # Made a member meanwhile by an admin: the higher of the two flags is kept.
        is_team_admin = team_store.join_team(
            session, team.id, caller.user_id, invitation.is_team_admin
        )
        details = {
            "invitation_id": invitation.id,
            "user_id": caller.user_id,
            "is_team_admin": is_team_admin,
            "invited_by": invitation.invited_by,
        }
        team_store.delete_team_invitation(session, invitation.id)
        record_audit(
            session, AuditActor.of(caller), "team.invite_accepted", "team", team.id, now, details
        )
        return TeamMembership(team, is_team_admin)


def decline_invitation(ctx: ServiceContext, caller: Caller, invitation_id: str) -> None:
    """Refuse the invitation (expired ones too): it is deleted."""
    now = ctx.now()
    with ctx.db.write() as session:
        found = _own_invitation(session, caller, invitation_id)
        details = {
            "invitation_id": found.id,
            "user_id": found.user_id,
            "invited_by": found.invited_by,
        }
        team_store.delete_team_invitation(session, found.id)
        record_audit(
            session,
            AuditActor.of(caller),
            "team.invite_declined",
            "team",
            found.team_id,
            now,
            details,
        )


def cancel_invitation(
    ctx: ServiceContext, caller: Caller, team_id: str, invitation_id: str
) -> None:
    """A team admin (or an admin) withdraws a pending invitation of their team."""
    now = ctx.now()
    with ctx.db.write() as session:
        if team_store.lock_team(session, team_id) is None:
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
        found = team_store.get_team_invitation(session, invitation_id)
        if found is None or found.team_id != team_id:
            raise NotFound.for_object(_KIND, invitation_id)
        details = {"invitation_id": found.id, "user_id": found.user_id}
        team_store.delete_team_invitation(session, found.id)
        record_audit(
            session, AuditActor.of(caller), "team.invite_cancelled", "team", team_id, now, details
        )
