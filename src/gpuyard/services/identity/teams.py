"""Teams: members (some of them team admins), a read-sharing flag, an optional quota
the scheduler enforces (services/scheduling/cycle.py reads the quota columns) and an
optional highest priority for the team's work (the priority policy, domain/priority.py).

Only admins add a user to a team directly; a team admin who lists a new user invites them
(services/identity/team_invitations.py), since members' work becomes readable to the team."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Target
from gpuyard.domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from gpuyard.domain.identity import WEIGHTED_RESOURCES, Team, TeamView
from gpuyard.domain.limits import (
    MAX_QUOTA_CPU_CORES,
    MAX_QUOTA_GPUS,
    MAX_QUOTA_RAM_GB,
    MAX_QUOTA_WEIGHT,
)
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
from gpuyard.scheduler.fairshare import TreeError, validate_tree
from gpuyard.scheduler.gpu_match import ALTERNATIVE_SEPARATOR, model_key, model_problem
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity import team_invitations
from gpuyard.services.identity.access import check_object, may, membership_for, visible_teams
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store import identity
from gpuyard.store import teams as team_store


@dataclass(frozen=True)
class QuotaSpec:
    """A cap on what a team holds at once, in API units; None = unlimited."""

    cpu: float | None = None
    ram_gb: float | None = None
    gpu: float | None = None


@dataclass(frozen=True)
class GuaranteeSpec:
    """What a team is guaranteed (deserved), in API units; lent to others while idle."""

    cpu: float = 0
    ram_gb: float = 0
    storage_gb: float = 0
    gpu: float = 0
    #: GPUs per model (a part of ``gpu``), reclaimed for work pinned to that model.
    gpu_models: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HierarchySpec:
    """A team's place in the quota tree (admins only): its department, its guarantee and
    the weight of its claim on idle capacity."""

    parent_id: str | None = None
    guarantee: GuaranteeSpec = field(default_factory=GuaranteeSpec)
    weight: int = 1
    #: At most this many GPUs of each model held at once by the team's work (a
    #: department's: its own and its teams' together); a model not named is unlimited.
    gpu_model_limits: Mapping[str, float] = field(default_factory=dict)
    #: Over-quota weights of single resources (cpu, ram_gb, storage_gb, gpu) where they
    #: differ from ``weight``.
    weights: Mapping[str, int] = field(default_factory=dict)
    #: Over-quota weights per GPU model: the team's claim on that model's idle GPUs (a
    #: model not named: the team's GPU weight).
    gpu_model_weights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberSpec:
    user_id: str
    is_team_admin: bool = False


@dataclass
class TeamSpec:
    name: str
    quota: QuotaSpec | None = None
    members_can_read: bool = False
    members: list[MemberSpec] = field(default_factory=list)
    #: The highest priority the team's work may ask for (domain/priority.py); None: none.
    max_priority: int | None = None
    hierarchy: HierarchySpec | None = None


@dataclass
class TeamChanges:
    """Fields of a PATCH. ``quota_set`` says whether quota was sent (null = unlimited)."""

    name: str | None = None
    quota: QuotaSpec | None = None
    quota_set: bool = False
    max_priority: int | None = None
    max_priority_set: bool = False
    members_can_read: bool | None = None
    members: list[MemberSpec] | None = None
    hierarchy: HierarchySpec | None = None


def _quota_units(quota: QuotaSpec | None) -> tuple[int | None, int | None, int | None]:
    if quota is None:
        return None, None, None
    errors: list[FieldError] = []

    def scaled(value: float | None, unit: int, name: str) -> int | None:
        if value is None:
            return None
        if not math.isfinite(value) or value < 0 or value > 1e7:
            errors.append(FieldError(f"quota.{name}", "must be a number from 0 to 10000000"))
            return None
        return round(value * unit)

    units = (
        scaled(quota.cpu, 1000, "cpu"),
        scaled(quota.ram_gb, MIB_PER_GB, "ram_gb"),
        scaled(quota.gpu, GPU_MILLI, "gpu"),
    )
    if errors:
        raise InvalidInput.for_fields(errors)
    return units


def _hierarchy_columns(
    session: Session, team_id: str | None, spec: HierarchySpec
) -> dict[str, object]:
    """The teams columns of ``spec``, checked against the stored tree: the parent exists, is
    not the team itself or below it, and the tree stays two levels deep; guarantees are
    finite, non-negative and bounded; the weight is 1 to MAX_QUOTA_WEIGHT."""
    errors: list[FieldError] = []
    units: dict[str, object] = {}
    for name, unit, column, top in (
        ("cpu", 1000, "guarantee_cpu_milli", MAX_QUOTA_CPU_CORES),
        ("ram_gb", MIB_PER_GB, "guarantee_ram_mib", MAX_QUOTA_RAM_GB),
        ("storage_gb", MIB_PER_GB, "guarantee_storage_mib", MAX_QUOTA_RAM_GB),
        ("gpu", GPU_MILLI, "guarantee_gpu_milli", MAX_QUOTA_GPUS),
    ):
        value = getattr(spec.guarantee, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= top:
            errors.append(
                FieldError(f"hierarchy.guarantee.{name}", f"must be a number from 0 to {top}")
            )
        else:
            units[column] = round(value * unit)
    models = _gpu_model_guarantees(spec.guarantee, errors)
    if models is not None:
        units["guarantee_gpu_models"] = models
    limits = _gpu_model_limits(spec, models, errors)
    if limits is not None:
        units["limit_gpu_models"] = limits
    if not _is_weight(spec.weight):
        errors.append(
            FieldError("hierarchy.weight", f"must be an integer from 1 to {MAX_QUOTA_WEIGHT}")
        )
    weights = _resource_weights(spec.weights, errors)
    if weights is not None:
        units["quota_weights"] = weights
    model_weights = _gpu_model_weights(spec.gpu_model_weights, errors)
    if model_weights is not None:
        units["weight_gpu_models"] = model_weights
    parents = team_store.team_parents(session)
    key = team_id if team_id is not None else "\0new"
    parents[key] = spec.parent_id
    if spec.parent_id is not None and spec.parent_id not in parents:
        errors.append(FieldError("hierarchy.parent_id", f"team {spec.parent_id!r} does not exist"))
    else:
        try:
            validate_tree(parents)
        except TreeError as err:
            message = str(err).replace("team '\\x00new'", "the new team")
            errors.append(FieldError("hierarchy.parent_id", message))
    if errors:
        raise InvalidInput.for_fields(errors)
    units["parent_id"] = spec.parent_id
    units["quota_weight"] = spec.weight
    return units


#: Most GPU models one team's guarantee may name.
MAX_GUARANTEED_GPU_MODELS = 16


def _is_weight(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_QUOTA_WEIGHT


def _resource_weights(weights: object, errors: list[FieldError]) -> dict[str, int] | None:
    """``weights`` ({resource: weight}) checked: resources of :data:`WEIGHTED_RESOURCES`,
    each weight an integer from 1 to MAX_QUOTA_WEIGHT; or None with ``errors`` added."""
    field_name = "hierarchy.weights"
    if not isinstance(weights, Mapping):
        errors.append(FieldError(field_name, "must be an object of resource: weight"))
        return None
    out: dict[str, int] = {}
    for name, value in weights.items():
        key = name if isinstance(name, str) else ""
        if key not in WEIGHTED_RESOURCES:
            errors.append(
                FieldError(
                    f"{field_name}.{key[:64]}",
                    f"must be one of {', '.join(WEIGHTED_RESOURCES)}",
                )
            )
        elif not _is_weight(value):
            errors.append(
                FieldError(
                    f"{field_name}.{key}", f"must be an integer from 1 to {MAX_QUOTA_WEIGHT}"
                )
            )
        else:
            out[key] = value
    return out if len(out) == len(weights) else None


def _gpu_model_weights(weights: object, errors: list[FieldError]) -> dict[str, int] | None:
    """``weights`` ({model: weight}, :func:`_per_model`), each an integer from 1 to
    MAX_QUOTA_WEIGHT; or None with ``errors`` added."""

    def weight(value: object) -> int | None:
        return value if isinstance(value, int) and _is_weight(value) else None

    wanted = f"must be an integer from 1 to {MAX_QUOTA_WEIGHT}"
    return _per_model(weights, "hierarchy.gpu_model_weights", errors, weight, wanted)


def _per_model(
    models: object,
    field_name: str,
    errors: list[FieldError],
    convert: Callable[[object], int | None],
    wanted: str,
) -> dict[str, int] | None:
    """``models`` ({model: value}) with each value converted by ``convert`` (None: not a
    valid value, refused with ``wanted``), or None with ``errors`` added. An object of at
    most :data:`MAX_GUARANTEED_GPU_MODELS` models, each one model (no ``|``) of the
    syntax requests use, named once (``h100`` and ``H100`` are the same model)."""
    if not isinstance(models, Mapping):
        errors.append(FieldError(field_name, "must be an object of model: value"))
        return None
    if len(models) > MAX_GUARANTEED_GPU_MODELS:
        errors.append(FieldError(field_name, f"at most {MAX_GUARANTEED_GPU_MODELS} models"))
        return None
    out: dict[str, int] = {}
    seen: dict[object, str] = {}
    for raw_name, value in models.items():
        name = raw_name.strip() if isinstance(raw_name, str) else ""
        problem = model_problem(name) if name else "must name a model"
        if problem is None and ALTERNATIVE_SEPARATOR in name:
            problem = "must name one model (no '|')"
        if problem is None and model_key(name) in seen:
            problem = f"names the same model as {seen[model_key(name)]!r}"
        if problem is None:
            seen[model_key(name)] = name
            converted = convert(value)
            if converted is not None:
                out[name] = converted
                continue
            problem = wanted
        errors.append(FieldError(f"{field_name}.{name[:64]}", problem))
    return out if len(out) == len(models) else None


def _gpu_models_milli(
    models: object, field_name: str, errors: list[FieldError], *, zero_allowed: bool = False
) -> dict[str, int] | None:
    """``models`` ({model: GPUs}, :func:`_per_model`) in milli-GPUs, or None with
    ``errors`` added: each from 0.001 (0 with ``zero_allowed``) to
    :data:`MAX_QUOTA_GPUS` GPUs, kept in whole milli."""
    lowest = 0.0 if zero_allowed else 1 / GPU_MILLI

    def milli(value: object) -> int | None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not lowest <= value <= MAX_QUOTA_GPUS
            or (value > 0 and round(value * GPU_MILLI) == 0)
        ):
            return None
        return round(value * GPU_MILLI)

    wanted = (
        f"must be {'0 or ' if zero_allowed else ''}a number of GPUs from 0.001 to {MAX_QUOTA_GPUS}"
    )
    return _per_model(models, field_name, errors, milli, wanted)


def _gpu_model_guarantees(
    guarantee: GuaranteeSpec, errors: list[FieldError]
) -> dict[str, int] | None:
    """``guarantee.gpu_models`` in milli-GPUs (:func:`_gpu_models_milli`), together at
    most the GPU guarantee (they are a part of it), or None with ``errors`` added."""
    field_name = "hierarchy.guarantee.gpu_models"
    out = _gpu_models_milli(guarantee.gpu_models, field_name, errors)
    if out is None:
        return None
    gpu = guarantee.gpu
    if (
        isinstance(gpu, int | float)
        and math.isfinite(gpu)
        and sum(out.values()) > round(gpu * GPU_MILLI)
    ):
        errors.append(
            FieldError(
                field_name, f"together at most the GPU guarantee ({gpu:g}): they are a part of it"
            )
        )
        return None
    return out


def _gpu_model_limits(
    spec: HierarchySpec, guarantees: dict[str, int] | None, errors: list[FieldError]
) -> dict[str, int] | None:
    """``spec.gpu_model_limits`` in milli-GPUs (:func:`_gpu_models_milli`; 0 keeps the
    team off the model), each at least the team's guarantee of the same model (a
    guarantee it could never reach is a mistake), or None with ``errors`` added."""
    field_name = "hierarchy.gpu_model_limits"
    out = _gpu_models_milli(spec.gpu_model_limits, field_name, errors, zero_allowed=True)
    if out is None:
        return None
    guaranteed = {model_key(m): (m, v) for m, v in (guarantees or {}).items()}
    failed = False
    for name, milli in out.items():
        found = guaranteed.get(model_key(name))
        if found is not None and milli < found[1]:
            errors.append(
                FieldError(
                    f"{field_name}.{name[:64]}",
                    f"must be at least the guarantee of {found[0]!r} "
                    f"({found[1] / GPU_MILLI:g} GPUs)",
                )
            )
            failed = True
    return None if failed else out


def _hierarchy_details(spec: HierarchySpec) -> dict[str, object]:
    g = spec.guarantee
    return {
        "parent_id": spec.parent_id,
        "guarantee": {
            "cpu": g.cpu,
            "ram_gb": g.ram_gb,
            "storage_gb": g.storage_gb,
            "gpu": g.gpu,
            "gpu_models": dict(g.gpu_models),
        },
        "weight": spec.weight,
        "gpu_model_limits": dict(spec.gpu_model_limits),
        "weights": dict(spec.weights),
        "gpu_model_weights": dict(spec.gpu_model_weights),
    }


def _check_members(session: Session, members: list[MemberSpec]) -> None:
    ids = [m.user_id for m in members]
    known = identity.existing_user_ids(session, ids)
    errors = [
        FieldError(f"members.{i}.user_id", f"user {m.user_id!r} does not exist")
        for i, m in enumerate(members)
        if m.user_id not in known
    ]
    if len(set(ids)) != len(ids):
        errors.append(FieldError("members", "a user is listed twice"))
    if errors:
        raise InvalidInput.for_fields(errors)


def _set_members(
    session: Session,
    caller: Caller,
    team_id: str,
    members: list[MemberSpec],
    now: datetime,
    invitation_ttl: timedelta,
) -> dict[str, object]:
    """Make ``members`` the team's member list, as far as the caller may: admins add users
    directly; anyone else (a team admin) keeps, re-flags or removes current members and
    invites the others. Returns the audit details. The team's row must be locked."""
    _check_members(session, members)
    if may(session, caller, Permission.TEAM_ADD_MEMBER, Target(team_id=team_id)):
        joined, invited = members, []
    else:
        current = team_store.member_ids(session, team_id)
        joined = [m for m in members if m.user_id in current]
        invited = [m for m in members if m.user_id not in current]
    team_store.replace_members(session, team_id, [(m.user_id, m.is_team_admin) for m in joined])
    team_store.drop_team_invitations(session, team_id, [m.user_id for m in joined])
    for m in invited:
        team_invitations.invite(
            session, caller, team_id, m.user_id, m.is_team_admin, now, invitation_ttl
        )
    return {"members": [vars(m) for m in joined], "invited": [vars(m) for m in invited]}


def list_teams(
    ctx: ServiceContext, caller: Caller, limit: int, offset: int
) -> tuple[list[TeamView], int]:
    """The teams the caller may read, by name, with the total count."""
    with ctx.db.read() as session:
        teams, count = team_store.list_teams(session, visible_teams(caller), limit, offset)
        return _views(session, caller, teams, ctx.now()), count


def get_team(ctx: ServiceContext, caller: Caller, team_id: str) -> TeamView:
    """The team with its members (and pending invitations where the caller manages)."""
    with ctx.db.read() as session:
        team = _load_team(session, caller, team_id, Permission.TEAM_READ)
        return _views(session, caller, [team], ctx.now())[0]


def _views(session: Session, caller: Caller, teams: list[Team], now: datetime) -> list[TeamView]:
    """Teams with their members, and their pending invitations where the caller manages."""
    members = team_store.members_of(session, [t.id for t in teams])
    mine = membership_for(session, caller, Permission.TEAM_MANAGE)
    managed = [
        t.id
        for t in teams
        if may(session, caller, Permission.TEAM_MANAGE, Target(team_id=t.id), mine)
    ]
    pending = team_invitations.pending_of_teams(session, managed, now)
    return [TeamView(t, members[t.id], pending.get(t.id, [])) for t in teams]


def _load_team(
    session: Session, caller: Caller, team_id: str, permission: Permission, *, lock: bool = False
) -> Team:
    team = team_store.lock_team(session, team_id) if lock else team_store.get_team(session, team_id)
    if team is None:
        raise NotFound.for_object("team", team_id)
    check_object(
        session,
        caller,
        permission,
        Target(team_id=team.id),
        read=Permission.TEAM_READ,
        kind="team",
        object_id=team_id,
    )
    return team


def create_team(ctx: ServiceContext, caller: Caller, spec: TeamSpec) -> Team:
    """Create a team (Conflict on a taken name); members the caller may not add are invited."""
    cpu, ram, gpu = _quota_units(spec.quota)
    now = ctx.now()
    with ctx.db.write() as session:
        hierarchy: dict[str, object] = {}
        if spec.hierarchy is not None:
            if not may(session, caller, Permission.TEAM_SET_QUOTA, Target()):
                raise Forbidden("only admins place a team in the quota tree")
            hierarchy = _hierarchy_columns(session, None, spec.hierarchy)
        if team_store.team_name_taken(session, spec.name):
            raise Conflict(f"a team named {spec.name!r} already exists")
        team = team_store.insert_team(
            session,
            name=spec.name,
            quota_cpu_milli=cpu,
            quota_ram_mib=ram,
            quota_gpu_milli=gpu,
            members_can_read=spec.members_can_read,
            created_at=now,
            max_priority=spec.max_priority,
        )
        if hierarchy:
            team = team_store.change_team(session, team.id, **hierarchy)
        details = {
            "name": spec.name,
            "hierarchy": None if spec.hierarchy is None else _hierarchy_details(spec.hierarchy),
            "quota": _quota_details(spec.quota),
            "max_priority": spec.max_priority,
            "members_can_read": spec.members_can_read,
            **_set_members(session, caller, team.id, spec.members, now, _invitation_ttl(ctx)),
        }
        record_audit(session, AuditActor.of(caller), "team.create", "team", team.id, now, details)
    ctx.scheduler_wakeup.notify()
    return team


def update_team(ctx: ServiceContext, caller: Caller, team_id: str, changes: TeamChanges) -> None:
    """Team admins manage members and the read flag; only admins change a quota or the
    team's highest priority (work already queued keeps its priority; new submissions and
    changes are held to the new cap)."""
    now = ctx.now()
    with ctx.db.write() as session:
        team = _load_team(session, caller, team_id, Permission.TEAM_MANAGE, lock=True)
        details: dict[str, object] = {}
        if changes.quota_set:
            if not may(session, caller, Permission.TEAM_SET_QUOTA, Target(team_id=team.id)):
                raise Forbidden("only admins change a team's quota")
            cpu, ram, gpu = _quota_units(changes.quota)
            team_store.change_team(
                session, team.id, quota_cpu_milli=cpu, quota_ram_mib=ram, quota_gpu_milli=gpu
            )
            details["quota"] = _quota_details(changes.quota)
        if changes.max_priority_set:
            if not may(session, caller, Permission.TEAM_SET_QUOTA, Target(team_id=team.id)):
                raise Forbidden("only admins change a team's max_priority")
            team_store.change_team(session, team.id, max_priority=changes.max_priority)
            details["max_priority"] = changes.max_priority
        if changes.hierarchy is not None:
            if not may(session, caller, Permission.TEAM_SET_QUOTA, Target(team_id=team.id)):
                raise Forbidden("only admins change a team's place in the quota tree")
            columns = _hierarchy_columns(session, team.id, changes.hierarchy)
            team_store.change_team(session, team.id, **columns)
            details["hierarchy"] = _hierarchy_details(changes.hierarchy)
        if changes.name is not None and changes.name != team.name:
            if team_store.team_name_taken(session, changes.name, other_than=team.id):
                raise Conflict(f"a team named {changes.name!r} already exists")
            details["name"] = changes.name
            team_store.change_team(session, team.id, name=changes.name)
        if changes.members_can_read is not None:
            details["members_can_read"] = changes.members_can_read
            team_store.change_team(session, team.id, members_can_read=changes.members_can_read)
        if changes.members is not None:
            ttl = _invitation_ttl(ctx)
            details.update(_set_members(session, caller, team.id, changes.members, now, ttl))
        record_audit(session, AuditActor.of(caller), "team.update", "team", team.id, now, details)
    ctx.scheduler_wakeup.notify()


def _invitation_ttl(ctx: ServiceContext) -> timedelta:
    return timedelta(hours=ctx.settings.team_invitation_ttl_hours)


def _quota_details(quota: QuotaSpec | None) -> dict[str, float | None] | None:
    return None if quota is None else {"cpu": quota.cpu, "ram_gb": quota.ram_gb, "gpu": quota.gpu}


# --- one member at a time (the dashboard's team page) ----------------------------------


def add_member(ctx: ServiceContext, caller: Caller, team_id: str, member: MemberSpec) -> None:
    """Add one member: admins add the user directly; a team admin invites them (they join
    when they accept), as with a PATCH of the whole list. Conflict when already a member."""
    with ctx.db.write() as session:
        team = _load_team(session, caller, team_id, Permission.TEAM_MANAGE, lock=True)
        current = _current_members(session, team.id)
        if not identity.existing_user_ids(session, [member.user_id]):
            raise InvalidInput.for_field("user_id", f"user {member.user_id!r} does not exist")
        if any(m.user_id == member.user_id for m in current):
            raise Conflict(f"user {member.user_id!r} is already a member of team {team.name!r}")
        _change_members(ctx, session, caller, team.id, [*current, member], "team.member_add")
    ctx.scheduler_wakeup.notify()


def set_member_role(
    ctx: ServiceContext, caller: Caller, team_id: str, user_id: str, is_team_admin: bool
) -> None:
    """Make a member a team admin or a plain member (NotFound when not a member)."""
    with ctx.db.write() as session:
        team = _load_team(session, caller, team_id, Permission.TEAM_MANAGE, lock=True)
        current = _current_members(session, team.id)
        _member_or_not_found(current, user_id)
        changed = [
            MemberSpec(m.user_id, is_team_admin if m.user_id == user_id else m.is_team_admin)
            for m in current
        ]
        _change_members(ctx, session, caller, team.id, changed, "team.member_update")
    ctx.scheduler_wakeup.notify()


def remove_member(ctx: ServiceContext, caller: Caller, team_id: str, user_id: str) -> None:
    """Take a member out of the team (NotFound when not a member)."""
    with ctx.db.write() as session:
        team = _load_team(session, caller, team_id, Permission.TEAM_MANAGE, lock=True)
        current = _current_members(session, team.id)
        _member_or_not_found(current, user_id)
        remaining = [m for m in current if m.user_id != user_id]
        _change_members(ctx, session, caller, team.id, remaining, "team.member_remove")
    ctx.scheduler_wakeup.notify()  # the quota their work counts against changed


def _current_members(session: Session, team_id: str) -> list[MemberSpec]:
    members = team_store.members_of(session, [team_id])[team_id]
    return [MemberSpec(m.user_id, m.is_team_admin) for m in members]


def _member_or_not_found(members: list[MemberSpec], user_id: str) -> None:
    if not any(m.user_id == user_id for m in members):
        raise NotFound.for_object("team member", user_id)


def _change_members(
    ctx: ServiceContext,
    session: Session,
    caller: Caller,
    team_id: str,
    members: list[MemberSpec],
    action: str,
) -> None:
    """The whole-list path (``_set_members``: who may add, who is invited), audited."""
    now = ctx.now()
    details = _set_members(session, caller, team_id, members, now, _invitation_ttl(ctx))
    record_audit(session, AuditActor.of(caller), action, "team", team_id, now, details)
