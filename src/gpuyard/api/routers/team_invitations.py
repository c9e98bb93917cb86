"""The caller's team invitations: list, accept (join the team), decline.

Invitations are made by team admins through PATCH /teams/{id} (members) and cancelled
through DELETE /teams/{id}/invitations/{invitation_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.identity_converters import joined_team_public, my_invitation_public
from gpuyard.api.schemas.auth import TeamMembershipPublic
from gpuyard.api.schemas.team_invitations import MyTeamInvitationsPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.identity import team_invitations

router = APIRouter(prefix="/team-invitations", tags=["teams"])
Invitee = Annotated[Caller, requires(Permission.TEAM_JOIN)]


@router.get("", response_model=MyTeamInvitationsPublic)
def list_my_invitations(
    ctx: ContextDep, caller: Invitee, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> MyTeamInvitationsPublic:
    """Your unexpired invitations to join a team, newest first."""
    items, count = team_invitations.list_my_invitations(ctx, caller, limit, offset)
    return MyTeamInvitationsPublic(data=[my_invitation_public(i) for i in items], count=count)


@router.post("/{invitation_id}/accept", response_model=TeamMembershipPublic)
def accept_invitation(ctx: ContextDep, caller: Invitee, invitation_id: str) -> TeamMembershipPublic:
    """Join the team. Its admins may then read the work you submit to it (and the team's
    members too, if the team shares reads). 404 unless the invitation is yours; 409 when
    it has expired."""
    return joined_team_public(team_invitations.accept_invitation(ctx, caller, invitation_id))


@router.post("/{invitation_id}/decline", status_code=status.HTTP_204_NO_CONTENT)
def decline_invitation(ctx: ContextDep, caller: Invitee, invitation_id: str) -> Response:
    """Refuse to join: the invitation is deleted. 404 unless it is yours."""
    team_invitations.decline_invitation(ctx, caller, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
