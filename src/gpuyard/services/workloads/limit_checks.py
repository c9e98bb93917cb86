"""Submit and resize against the team's limits (issue 21; the rule:
``scheduler/limit_feasibility.py``).

Work that asks, on its own, for more than a limit of its team, its team's department or
the default quota of users in no team allows could never run: submit, plan and resize
refuse it (422 naming the field). A running workload's resize that fits its limits alone
but not with the rest of its team's work held now is a 409 and changes nothing; a pending
workload's just waits with the ``quota`` reason, as new work past the team's usage does.

Limits are read in the request's own transaction. An admin who lowers a limit later
never fails work already accepted: it keeps waiting with the quota reason. Like the
scheduler's quota check (docs/concurrency.md #14, known limits), the 409 is judged on
what the transaction reads: two resizes of one team's work at the same moment may each
see the other's old size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from sqlalchemy.orm import Session

from gpuyard.auth.roles import Role
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput
from gpuyard.domain.identity import Team
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.limit_feasibility import (
    LIMITED_FIELDS,
    Held,
    LimitHolder,
    over_limits_alone,
    over_limits_with_held,
)
from gpuyard.services.scheduling.snapshot_loader import PersonalQuota
from gpuyard.store.identity import get_user
from gpuyard.store.team_usage import gpu_models_on, held_now
from gpuyard.store.teams import get_team, team_parents
from gpuyard.store.workload_tables import WorkloadRow


def limit_holders(
    session: Session, team_id: str | None, owner_id: str, personal: PersonalQuota | None
) -> list[LimitHolder]:
    """The limits ``team_id``'s work (or, in no team, ``owner_id``'s) counts against:
    the team's and its department's, or the default quota of users in no team (admins
    are exempt from it, as the scheduler has them)."""
    if team_id is None:
        if personal is None:
            return []
        owner = get_user(session, owner_id)
        if owner is None or owner.role == Role.ADMIN.value:
            return []
        return [
            LimitHolder(
                "default",
                cpu_milli=personal.cpu_milli,
                ram_mib=personal.ram_mib,
                gpu_milli=personal.gpu_milli,
            )
        ]
    team = get_team(session, team_id)
    if team is None:
        return []
    holders = [_holder("team", team)]
    if team.parent_id is not None and team.parent_id != team.id:
        department = get_team(session, team.parent_id)
        if department is not None:
            holders.append(_holder("department", department))
    return holders


def _holder(kind: str, team: Team) -> LimitHolder:
    """``team``'s limits, as the team or as the department above the judged work."""
    return LimitHolder(
        kind,
        team.name,
        team.quota_cpu_milli,
        team.quota_ram_mib,
        team.quota_gpu_milli,
        team.limit_gpu_models,
    )


def submission_limit_errors(
    session: Session,
    team_id: str | None,
    owner_id: str,
    per_replica: Resources,
    replicas: int,
    gpu_model: str | None,
    personal: PersonalQuota | None,
    fleet_models: FleetModels = lambda: (),
) -> list[FieldError]:
    """The findings (422) on a submission that could never run within its limits
    (``fleet_models``: the GPU models of the servers it may use, read only when a
    per-model limit covers the work)."""
    holders = limit_holders(session, team_id, owner_id, personal)
    if not holders:
        return []
    models = _models_if_limited(per_replica, holders, fleet_models)
    found = over_limits_alone(per_replica, replicas, gpu_model, holders, fleet_models=models)
    return [FieldError(f.field, f.message) for f in found]


#: The GPU models of the servers work may use, asked for only when needed (reading them
#: walks every server's devices, which the common submission never needs).
FleetModels = Callable[[], Collection[str]]


def _models_if_limited(
    request: Resources, holders: Sequence[LimitHolder], fleet_models: FleetModels
) -> Collection[str]:
    """``fleet_models()`` when a per-model limit could refuse ``request``, else none."""
    if request.gpu_milli > 0 and any(holder.gpu_models for holder in holders):
        return fleet_models()
    return ()


def check_resize_limits(
    session: Session,
    row: WorkloadRow,
    current: Resources,
    new: Resources,
    gpu_model: str | None,
    personal: PersonalQuota | None,
    *,
    holds_resources: bool,
    fleet_models: FleetModels = lambda: (),
) -> None:
    """Refuse a resize of ``row`` from ``current`` to ``new`` (per replica; pinned to
    ``gpu_model``) that grows past a limit: 422 when the new size alone does, 409 when a
    workload that holds resources would take its team (or department, or its owner in no
    team) past one with the work it holds now. Dimensions that do not grow are not
    judged: shrinking is always allowed."""
    grown = _grown(current, new, row.gpu_model, gpu_model)
    if not grown:
        return
    holders = limit_holders(session, row.team_id, row.owner_id, personal)
    if not holders:
        return
    models = _models_if_limited(new, holders, fleet_models)
    alone = over_limits_alone(new, row.replicas, gpu_model, holders, grown, models)
    if alone:
        raise InvalidInput.for_fields([FieldError(f.field, f.message) for f in alone])
    if not holds_resources:
        return  # a pending workload waits with the quota reason, as new work does
    placed = len(row.allocations)
    # Grown in place, its GPUs come from the servers it is on: any of their models it
    # accepts may be taken (conservative on a server of several models, as the
    # scheduler's per-model filter is).
    requested = model_key(gpu_model)
    servers = {allocation.server_id for allocation in row.allocations}
    usable = [m for m in gpu_models_on(session, servers) if device_matches(requested, m)]
    limits = [(holder, _held(session, row, holder)) for holder in holders]
    over = over_limits_with_held(new, placed, gpu_model, usable, limits, grown)
    if over:
        raise Conflict(
            "; ".join(f.message for f in over)
            + ": nothing was changed, the workload keeps running at its size",
            [FieldError(f.field, f.message) for f in over],
        )


def _grown(
    current: Resources, new: Resources, model_before: str | None, model_after: str | None
) -> frozenset[str]:
    """The limited fields a change grows: a dimension that asks more, and the GPU model
    when GPUs grow or the model changes."""
    grown = {
        name
        for name, before, after in (
            ("cpu", current.cpu_milli, new.cpu_milli),
            ("ram_gb", current.ram_mib, new.ram_mib),
            ("gpu", current.gpu_milli, new.gpu_milli),
        )
        if after > before
    }
    if new.gpu_milli > 0 and ("gpu" in grown or model_before != model_after):
        grown.add("gpu_model")
    return frozenset(grown) & LIMITED_FIELDS


def _held(session: Session, row: WorkloadRow, holder: LimitHolder) -> Held:
    """What the work counting against ``holder`` holds now, ``row``'s own excluded."""
    if holder.kind == "default":
        resources, by_model = held_now(session, teamless_owner=row.owner_id, excluding=row.id)
    else:
        parents = team_parents(session)
        team = row.team_id or ""
        # The team's own limits cover its teams' work too when it is a department.
        top = team if holder.kind == "team" else parents.get(team)
        members = _with_teams(parents, top) if top is not None else []
        resources, by_model = held_now(session, team_ids=members, excluding=row.id)
    return Held(resources, by_model)


def _with_teams(parents: Mapping[str, str | None], department: str) -> Sequence[str]:
    """``department`` and every team under it (none for a team without teams)."""
    return [department, *(t for t, p in parents.items() if p == department and t != department)]
