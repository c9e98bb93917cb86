"""Teams: members, team admins, read sharing and quota."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.identity_converters import team_public
from gpuyard.api.schemas.identity import (
    HierarchyBody,
    QuotaBody,
    TeamCreate,
    TeamMemberBody,
    TeamMemberRoleBody,
    TeamPublic,
    TeamsPublic,
    TeamUpdate,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.identity import team_invitations, teams

router = APIRouter(prefix="/teams", tags=["teams"])
Reader = Annotated[Caller, requires(Permission.TEAM_READ)]
Manager = Annotated[Caller, requires(Permission.TEAM_MANAGE)]


def _quota(body: QuotaBody | None) -> teams.QuotaSpec | None:
    return None if body is None else teams.QuotaSpec(body.cpu, body.ram_gb, body.gpu)


def _hierarchy(body: HierarchyBody | None) -> teams.HierarchySpec | None:
    if body is None:
        return None
    g = body.guarantee
    return teams.HierarchySpec(
        parent_id=body.parent_id,
        guarantee=teams.GuaranteeSpec(g.cpu, g.ram_gb, g.storage_gb, g.gpu, dict(g.gpu_models)),
        weight=body.weight,
        gpu_model_limits=dict(body.gpu_model_limits),
        weights=dict(body.weights),
        gpu_model_weights=dict(body.gpu_model_weights),
    )


def _members(body: list[TeamMemberBody]) -> list[teams.MemberSpec]:
    return [teams.MemberSpec(m.user_id, m.is_team_admin) for m in body]


@router.get("", response_model=TeamsPublic)
def list_teams(
    ctx: ContextDep, caller: Reader, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> TeamsPublic:
    """Admins and operators see every team; users see the teams they belong to."""
    views, count = teams.list_teams(ctx, caller, limit, offset)
    return TeamsPublic(data=[team_public(v) for v in views], count=count)


@router.post("", response_model=TeamPublic, status_code=status.HTTP_201_CREATED)
def create_team(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.TEAM_CREATE)],
    body: TeamCreate,
) -> TeamPublic:
    spec = teams.TeamSpec(
        name=body.name,
        quota=_quota(body.quota),
        max_priority=body.max_priority,
        members_can_read=body.members_can_read,
        members=_members(body.members),
        hierarchy=_hierarchy(body.hierarchy),
    )
    row = teams.create_team(ctx, caller, spec)
    return team_public(teams.get_team(ctx, caller, row.id))


@router.get("/{team_id}", response_model=TeamPublic)
def get_team(ctx: ContextDep, caller: Reader, team_id: str) -> TeamPublic:
    return team_public(teams.get_team(ctx, caller, team_id))


@router.patch("/{team_id}", response_model=TeamPublic)
def update_team(ctx: ContextDep, caller: Manager, team_id: str, body: TeamUpdate) -> TeamPublic:
    """Admins change anything; team admins change members and read sharing, not quota or
    max_priority (the priority policy).
    ``members`` is the complete list: admins add users directly; a team admin keeps,
    re-flags or removes members, and invites the users new to the team (they join when
    they accept: ``pending_invitations``). Send ``quota: null`` to remove a quota
    (``max_priority: null`` the team's priority cap); leave it out to keep it.
    ``hierarchy`` (admins) sets the department above the team (two levels at most: no
    cycles), its guarantee, its per-model limits and its over-quota weights (one for
    every resource, per resource, per GPU model); it replaces them all."""
    changes = teams.TeamChanges(
        name=body.name,
        quota=_quota(body.quota),
        quota_set="quota" in body.model_fields_set,
        max_priority=body.max_priority,
        max_priority_set="max_priority" in body.model_fields_set,
        members_can_read=body.members_can_read,
        members=_members(body.members) if body.members is not None else None,
        hierarchy=_hierarchy(body.hierarchy),
    )
    teams.update_team(ctx, caller, team_id, changes)
    return team_public(teams.get_team(ctx, caller, team_id))


@router.delete("/{team_id}/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
def cancel_invitation(
    ctx: ContextDep, caller: Manager, team_id: str, invitation_id: str
) -> Response:
    """Withdraw a pending invitation (team admins of the team, admins)."""
    team_invitations.cancel_invitation(ctx, caller, team_id, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{team_id}/members", response_model=TeamPublic, status_code=status.HTTP_201_CREATED)
def add_member(ctx: ContextDep, caller: Manager, team_id: str, body: TeamMemberBody) -> TeamPublic:
    """Add one member. Admins add the user directly; a team admin invites them, and they
    join when they accept (the team's ``pending_invitations``). 409 when already a member."""
    teams.add_member(ctx, caller, team_id, teams.MemberSpec(body.user_id, body.is_team_admin))
    return team_public(teams.get_team(ctx, caller, team_id))


@router.patch("/{team_id}/members/{user_id}", response_model=TeamPublic)
def update_member(
    ctx: ContextDep, caller: Manager, team_id: str, user_id: str, body: TeamMemberRoleBody
) -> TeamPublic:
    """Make a member a team admin, or a plain member again."""
    teams.set_member_role(ctx, caller, team_id, user_id, body.is_team_admin)
    return team_public(teams.get_team(ctx, caller, team_id))


@router.delete("/{team_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(ctx: ContextDep, caller: Manager, team_id: str, user_id: str) -> Response:
    """Take a member out of the team (their work stays theirs)."""
    teams.remove_member(ctx, caller, team_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
