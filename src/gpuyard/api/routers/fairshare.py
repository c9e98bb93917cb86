"""The fair-share view: each team's guarantee, usage, borrowed and fair share (issue 21)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.fairshare_converters import fairshare_team_public, resource_amounts
from gpuyard.api.schemas.fairshare import FairSharePublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.scheduling.fairshare_view import fairshare_view

router = APIRouter(prefix="/fairshare", tags=["queue"])
Reader = Annotated[Caller, requires(Permission.FAIRSHARE_READ)]


@router.get("", response_model=FairSharePublic)
def get_fairshare(ctx: ContextDep, caller: Reader) -> FairSharePublic:
    """Every team of the quota tree (departments first, each followed by its teams) with
    its guarantee, usage, borrowing and fair share. Admins and operators see every team;
    users see their own teams and the departments above them."""
    capacity, entries = fairshare_view(ctx, caller)
    data = [fairshare_team_public(e) for e in entries]
    return FairSharePublic(
        capacity=resource_amounts(capacity),
        half_life_s=ctx.settings.fairshare_half_life_s,
        data=data,
        count=len(data),
    )
