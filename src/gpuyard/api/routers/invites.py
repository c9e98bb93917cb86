"""Invites: a single-use registration code with a role, a team and an expiry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.identity_converters import invite_public
from gpuyard.api.schemas.identity import InviteCreate, InvitePublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
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
