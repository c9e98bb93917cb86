"""Idle culling: the policies (global, per team, per image type) and a workload's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.schemas.culling import (
    CullingDefaultsPublic,
    CullingPoliciesPublic,
    CullingPolicyPublic,
    EffectiveCullingPublic,
    ImageTypeCullingBody,
    TeamCullingBody,
    TeamCullingPublic,
    WorkloadCullingPublic,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.culling import CullMode, PolicySettings, StoredPolicy
from gpuyard.domain.image_references import TYPE_PATTERN
from gpuyard.services.culling import policies
from gpuyard.services.culling.policies import TeamCulling, WorkloadCulling

router = APIRouter(tags=["culling"])
ImageTypePath = Annotated[str, Path(min_length=1, max_length=32, pattern=TYPE_PATTERN)]
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


def _mode(mode: str | None) -> CullMode | None:
    return CullMode(mode) if mode is not None else None


def _policy(stored: StoredPolicy) -> CullingPolicyPublic:
    s = stored.settings
    return CullingPolicyPublic(
        scope=stored.scope.value,
        subject=stored.subject,
        mode=s.mode.value if s.mode is not None else None,
        threshold_pct=s.threshold_pct,
        window_s=s.window_s,
        max_lifetime_s=s.max_lifetime_s,
        updated_by=stored.updated_by,
        updated_at=stored.updated_at,
    )


def _team(found: TeamCulling) -> TeamCullingPublic:
    e = found.effective
    return TeamCullingPublic(
        team_id=found.team_id,
        policy=_policy(found.stored) if found.stored is not None else None,
        effective=EffectiveCullingPublic(
            idle_culling=e.culled,
            off_by=e.off_by,
            threshold_pct=e.threshold_pct,
            window_s=e.window_s,
        ),
    )


@router.get("/culling/policies", response_model=CullingPoliciesPublic)
def list_policies(
    ctx: ContextDep, _caller: Annotated[Caller, requires(Permission.CULLING_READ)]
) -> CullingPoliciesPublic:
    """The default (settings) and every team's and image type's policy."""
    found = policies.list_culling_policies(ctx)
    d = found.default
    return CullingPoliciesPublic(
        default=CullingDefaultsPublic(
            mode=d.mode.value if d.mode is not None else "off",
            threshold_pct=d.threshold_pct or 0.0,
            window_s=d.window_s or 0,
            warn_s=found.warn_s,
            interval_s=found.interval_s,
        ),
        teams=[_policy(p) for p in found.teams],
        image_types=[_policy(p) for p in found.image_types],
    )


@router.put("/culling/policies/image-types/{image_type}", response_model=CullingPolicyPublic)
def set_image_type_policy(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.CULLING_MANAGE)],
    image_type: ImageTypePath,
    body: ImageTypeCullingBody,
) -> CullingPolicyPublic:
    """Set the policy of workloads whose image is a catalog image of this type."""
    settings = PolicySettings(_mode(body.mode), body.threshold_pct, body.window_s)
    return _policy(policies.set_image_type_culling_policy(ctx, caller, image_type, settings))


@router.delete("/culling/policies/image-types/{image_type}", status_code=status.HTTP_204_NO_CONTENT)
def clear_image_type_policy(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.CULLING_MANAGE)],
    image_type: ImageTypePath,
) -> Response:
    policies.clear_image_type_culling_policy(ctx, caller, image_type)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/teams/{team_id}/culling", response_model=TeamCullingPublic)
def get_team_policy(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.TEAM_READ)],
    team_id: IdPath,
) -> TeamCullingPublic:
    """The team's policy as set, and what applies to its workloads."""
    return _team(policies.team_culling_policy(ctx, caller, team_id))


@router.put("/teams/{team_id}/culling", response_model=TeamCullingPublic)
def set_team_policy(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.TEAM_MANAGE)],
    team_id: IdPath,
    body: TeamCullingBody,
) -> TeamCullingPublic:
    """Set the team's policy (team admins; only admins set or lift ``never``)."""
    settings = PolicySettings(
        _mode(body.mode), body.threshold_pct, body.window_s, body.max_lifetime_s
    )
    return _team(policies.set_team_culling_policy(ctx, caller, team_id, settings))


@router.delete("/teams/{team_id}/culling", status_code=status.HTTP_204_NO_CONTENT)
def clear_team_policy(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.TEAM_MANAGE)],
    team_id: IdPath,
) -> Response:
    policies.clear_team_culling_policy(ctx, caller, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _workload(found: WorkloadCulling) -> WorkloadCullingPublic:
    state = found.state
    return WorkloadCullingPublic(
        workload_id=found.workload_id,
        running=found.running,
        idle_culling=found.idle_culling,
        off_by=found.off_by,
        threshold_pct=found.threshold_pct,
        window_s=found.window_s,
        image_type=found.image_type,
        max_lifetime_s=found.max_lifetime_s,
        lifetime_source=found.lifetime_source,
        idle_since=state.idle_since,
        idle_max_pct=state.idle_peak_pct,
        idle_warned_at=state.idle_warned_at,
        idle_stop_at=state.idle_stop_at,
        lifetime_warned_at=state.lifetime_warned_at,
        lifetime_stop_at=state.lifetime_stop_at,
        stop_at=found.stop_at,
        seconds_left=found.seconds_left,
        no_signal=state.unsupported_noted,
        no_signal_reason=state.no_signal_reason if state.unsupported_noted else None,
    )


@router.get("/workloads/{workload_id}/culling", response_model=WorkloadCullingPublic)
def get_workload_culling(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.WORKLOAD_READ)],
    workload_id: IdPath,
) -> WorkloadCullingPublic:
    """Whether and when it will be stopped: idle since, the warning, the time left."""
    return _workload(policies.workload_culling(ctx, caller, workload_id))
