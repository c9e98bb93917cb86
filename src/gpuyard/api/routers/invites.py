"""Invites: a single-use registration code with a role, a team and an expiry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.identity_converters import invite_listed_public, invite_public
from gpuyard.api.schemas.identity import InviteCreate, InvitePublic, InvitesPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.identity import InviteStatus
from gpuyard.services.identity import invites

router = APIRouter(prefix="/invites", tags=["invites"])


@router.post("", response_model=InvitePublic, status_code=status.HTTP_201_CREATED)
def create_invite(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.INVITE_CREATE)],
    body: InviteCreate,
) -> InvitePublic:
    """Admins invite anyone with any role; team admins invite users into their team.
    The code is shown once; it is stored hashed."""
    row, code = invites.create_invite(
        ctx, caller, body.email, body.role, body.team_id, body.expires_in_hours
    )
    return invite_public(row, code)


@router.get("", response_model=InvitesPublic)
def list_invites(
    ctx: ContextDep,
    _caller: Annotated[Caller, requires(Permission.INVITE_READ)],
    status_: Annotated[
        InviteStatus | None, Query(alias="status", description="pending, used or expired")
    ] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> InvitesPublic:
    """Invites, newest first; their codes are never shown again."""
    found, count = invites.list_invites(ctx, status_, limit, offset)
    now = ctx.now()
    return InvitesPublic(data=[invite_listed_public(i, now) for i in found], count=count)


@router.delete("/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_invite(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.INVITE_REVOKE)],
    invite_id: str,
) -> Response:
    """Withdraw an unused invite: its code stops working. A used one: 409."""
    invites.revoke_invite(ctx, caller, invite_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
