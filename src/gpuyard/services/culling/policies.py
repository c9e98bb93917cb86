"""Idle culling's policies (who may read and set them) and a workload's culling status.

- Admins and operators read every policy (``culling.read``).
- A team's policy: its members read it (``team.read``); its team admins set it
  (``team.manage``), except ``never``, which only admins set or lift (``culling.manage``):
  a team admin may turn culling on or off, change the threshold, the window and the
  team's default lifetime.
- An image type's policy: admins only (``culling.manage``).
Every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Target
from gpuyard.domain.culling import (
    CullMode,
    CullState,
    EffectivePolicy,
    PolicyScope,
    PolicySettings,
    StoredPolicy,
    resolve_policy,
    time_left_s,
)
from gpuyard.domain.errors import Forbidden, NotFound
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.context import ServiceContext
from gpuyard.services.culling.loop import Policies, default_policy
from gpuyard.services.identity.access import check_object, may
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.workloads.submission import load_workload
from gpuyard.store import culling as culling_store
from gpuyard.store import teams as team_store
from gpuyard.store.base import as_utc_or_none
from gpuyard.store.culling import CullCandidate


@dataclass(frozen=True)
class CullingPolicies:
    """Every policy: the global default and the stored ones."""

    default: PolicySettings
    warn_s: int
    interval_s: float
    teams: list[StoredPolicy]
    image_types: list[StoredPolicy]


@dataclass(frozen=True)
class TeamCulling:
    """A team's policy as set (None: nothing set) and what applies to its workloads
    (image types may refine it)."""

    team_id: str
    stored: StoredPolicy | None
    effective: EffectivePolicy


def list_culling_policies(ctx: ServiceContext) -> CullingPolicies:
    """The default and every stored policy (the route checks ``culling.read``)."""
    with ctx.db.read() as session:
        stored = culling_store.list_policies(session)
    return CullingPolicies(
        default=default_policy(ctx),
        warn_s=ctx.settings.idle_cull_warn_s,
        interval_s=ctx.settings.culling_interval_s,
        teams=[p for p in stored if p.scope is PolicyScope.TEAM],
        image_types=[p for p in stored if p.scope is PolicyScope.IMAGE_TYPE],
    )


def _check_team(session: Session, caller: Caller, team_id: str, permission: Permission) -> None:
    if team_store.get_team(session, team_id) is None:
        raise NotFound.for_object("team", team_id)
    check_object(
        session,
        caller,
        permission,
        Target(team_id=team_id),
        read=Permission.TEAM_READ,
        kind="team",
        object_id=team_id,
    )


def _team_culling(ctx: ServiceContext, session: Session, team_id: str) -> TeamCulling:
    stored = culling_store.get_policy(session, PolicyScope.TEAM, team_id)
    effective = resolve_policy(default_policy(ctx), stored.settings if stored else None, None)
    return TeamCulling(team_id, stored, effective)


def team_culling_policy(ctx: ServiceContext, caller: Caller, team_id: str) -> TeamCulling:
    """A team's policy, for its members (and admins, operators)."""
    with ctx.db.read() as session:
        _check_team(session, caller, team_id, Permission.TEAM_READ)
        return _team_culling(ctx, session, team_id)


def set_team_culling_policy(
    ctx: ServiceContext, caller: Caller, team_id: str, settings: PolicySettings
) -> TeamCulling:
    """Set a team's policy (its team admins; ``never`` is the admins' alone)."""
    now = ctx.now()
    with ctx.db.write() as session:
        _check_team(session, caller, team_id, Permission.TEAM_MANAGE)
        current = culling_store.get_policy(session, PolicyScope.TEAM, team_id)
        _check_never(session, caller, current, settings.mode)
        culling_store.put_policy(session, PolicyScope.TEAM, team_id, settings, caller.user_id, now)
        record_audit(
            session,
            AuditActor.of(caller),
            "culling.policy.set",
            "team",
            team_id,
            now,
            _details(settings),
        )
        return _team_culling(ctx, session, team_id)


def clear_team_culling_policy(ctx: ServiceContext, caller: Caller, team_id: str) -> None:
    """Remove a team's policy: its workloads follow the default (and their image types)."""
    now = ctx.now()
    with ctx.db.write() as session:
        _check_team(session, caller, team_id, Permission.TEAM_MANAGE)
        current = culling_store.get_policy(session, PolicyScope.TEAM, team_id)
        if current is None:
            raise NotFound(f"team {team_id!r} has no culling policy of its own")
        _check_never(session, caller, current, None)
        culling_store.delete_policy(session, PolicyScope.TEAM, team_id)
        record_audit(
            session, AuditActor.of(caller), "culling.policy.clear", "team", team_id, now, {}
        )


def _check_never(
    session: Session, caller: Caller, current: StoredPolicy | None, mode: CullMode | None
) -> None:
    """Only admins set ``never`` or change a policy that says it."""
    touches_never = mode is CullMode.NEVER or (
        current is not None and current.settings.mode is CullMode.NEVER
    )
    if touches_never and not may(session, caller, Permission.CULLING_MANAGE, Target()):
        raise Forbidden("only admins set or lift 'never' (mode)")


def set_image_type_culling_policy(
    ctx: ServiceContext, caller: Caller, image_type: str, settings: PolicySettings
) -> StoredPolicy:
    """Set an image type's policy (the route checks ``culling.manage``)."""
    now = ctx.now()
    with ctx.db.write() as session:
        stored = culling_store.put_policy(
            session, PolicyScope.IMAGE_TYPE, image_type, settings, caller.user_id, now
        )
        record_audit(
            session,
            AuditActor.of(caller),
            "culling.policy.set",
            "image_type",
            image_type,
            now,
            _details(settings),
        )
        return stored


def clear_image_type_culling_policy(ctx: ServiceContext, caller: Caller, image_type: str) -> None:
    """Remove an image type's policy (the route checks ``culling.manage``)."""
    now = ctx.now()
    with ctx.db.write() as session:
        if not culling_store.delete_policy(session, PolicyScope.IMAGE_TYPE, image_type):
            raise NotFound(f"image type {image_type!r} has no culling policy")
        record_audit(
            session,
            AuditActor.of(caller),
            "culling.policy.clear",
            "image_type",
            image_type,
            now,
            {},
        )


def _details(settings: PolicySettings) -> dict[str, object]:
    return {
        "mode": settings.mode.value if settings.mode is not None else None,
        "threshold_pct": settings.threshold_pct,
        "window_s": settings.window_s,
        "max_lifetime_s": settings.max_lifetime_s,
    }


@dataclass(frozen=True)
class WorkloadCulling:
    """What idle culling and the maximum lifetime say about one workload now."""

    workload_id: str
    running: bool
    idle_culling: bool
    #: Which level switched idle culling off (None while it is on).
    off_by: str | None
    threshold_pct: float
    window_s: int
    image_type: str | None
    max_lifetime_s: int | None
    #: Where the lifetime comes from ("set on the workload", "its team's default").
    lifetime_source: str | None
    state: CullState
    #: The earliest announced stop, and the seconds left until it (None: none announced).
    stop_at: datetime | None
    seconds_left: float | None


def workload_culling(ctx: ServiceContext, caller: Caller, workload_id: str) -> WorkloadCulling:
    """A workload's culling status, for whoever may read the workload."""
    now = ctx.now()
    with ctx.db.read() as session:
        row = load_workload(session, caller, workload_id, Permission.WORKLOAD_READ)
        stored = culling_store.list_policies(session)
        types = culling_store.image_types_by_reference(session, [row.image])
        kept = culling_store.cull_state(session, row.id)
        candidate = CullCandidate(
            workload_id=row.id,
            version=row.version,
            name=row.name,
            team_id=row.team_id,
            image=row.image,
            command=tuple(row.command) if row.command is not None else None,
            duration_s=row.duration_s,
            max_lifetime_s=row.max_lifetime_s,
            started_at=as_utc_or_none(row.started_at),
            replicas=(),
        )
        running = row.status == WorkloadStatus.RUNNING.value
    policies = Policies(default_policy(ctx), stored)
    image_type = types.get(candidate.image)
    effective = resolve_policy(
        policies.default,
        policies.teams.get(candidate.team_id or ""),
        policies.image_types.get(image_type) if image_type is not None else None,
        image_type,
    )
    lifetime = policies.lifetime(candidate) if candidate.started_at is not None else None
    state = kept.state if kept is not None and running else CullState()
    left = time_left_s(state, now)
    deadlines = [d for d in (state.idle_stop_at, state.lifetime_stop_at) if d is not None]
    return WorkloadCulling(
        workload_id=row.id,
        running=running,
        idle_culling=effective.culled,
        off_by=effective.off_by,
        threshold_pct=effective.threshold_pct,
        window_s=effective.window_s,
        image_type=image_type,
        max_lifetime_s=lifetime.max_lifetime_s if lifetime else candidate.max_lifetime_s,
        lifetime_source=lifetime.source if lifetime else None,
        state=state,
        stop_at=min(deadlines) if deadlines else None,
        seconds_left=left,
    )
