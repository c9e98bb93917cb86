"""Workloads: submit, read, list and their events. Changes live in workload_changes."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol, Self, TypeVar, cast

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Scope, Target, scope_of
from gpuyard.auth.roles import Role
from gpuyard.domain.errors import FieldError, GpuyardError, InvalidInput, NotFound
from gpuyard.domain.files_paths import DEFAULT_FILES_PATH, files_path_problem
from gpuyard.domain.priority import priority_problem
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.domain.workload_records import Workload, WorkloadEvent
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.runtimes.registry import capacity_shared, whole_gpus_only
from gpuyard.scheduler.feasibility import never_fits
from gpuyard.scheduler.gpu_match import device_matches, model_key, model_problem
from gpuyard.scheduler.snapshot import PendingWorkload, ServerView
from gpuyard.services.context import ServiceContext
from gpuyard.services.group_commit import GroupCommit
from gpuyard.services.identity.access import (
    check_object,
    load_membership,
    may,
    visible_workloads,
    workload_target,
)
from gpuyard.services.identity.audit import AuditActor, audit_entry, record_audit_entries
from gpuyard.services.pools.claim import claim_warm_container, relabel_claimed
from gpuyard.services.scheduling.capacity_index import CapacityIndex
from gpuyard.services.scheduling.snapshot_loader import PersonalQuota
from gpuyard.services.workloads.from_catalog import catalog_defaults, read_catalog_image
from gpuyard.services.workloads.limit_checks import submission_limit_errors
from gpuyard.services.workloads.transitions import submission_event
from gpuyard.store.audit_log import AuditEntry
from gpuyard.store.base import new_id
from gpuyard.store.fleet import (
    cluster_exists,
    cluster_kind,
    largest_gpu_memory_by_model,
    lock_cluster_row,
)
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.snapshot_source import clusters_of_kinds
from gpuyard.store.workload_tables import WorkloadRow
from gpuyard.store.workloads import (
    WorkloadFilter,
    find_events,
    find_workloads,
    insert_workloads,
    workload_record,
    workload_row,
)

__all__ = ["WorkloadFilter"]  # the list filter, for the API

_SUBMISSIONS = "workload submissions"
SpecT = TypeVar("SpecT", bound="WorkloadSpec")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$")


class WorkloadSpec(Protocol):
    """What a submission asks for, as this service reads it.

    The API's request body (``api.schemas.workloads.WorkloadCreate``) is one and is
    passed as it is: its types and bounds were checked when the JSON was parsed, so the
    request reaches the service in the shape it arrived in, without a copy. The rules that
    span fields or need the database are checked here. A launch from the catalog
    (``image_id``) is the one exception: it is copied with the image's defaults filled in
    (``services/workloads/from_catalog.py``)."""

    #: None only with ``image_id`` (the catalog image's reference is used).
    @property
    def image(self) -> str | None: ...
    #: A catalog image whose defaults fill what the request leaves out.
    @property
    def image_id(self) -> str | None: ...
    #: Where the files directory is mounted; None: the image's, else /workspace.
    @property
    def files_path(self) -> str | None: ...
    #: The fields the request gave (pydantic's name), and a copy with values replaced.
    @property
    def model_fields_set(self) -> set[str]: ...
    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self: ...
    @property
    def name(self) -> str | None: ...
    @property
    def command(self) -> Sequence[str] | None: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    #: Keys of ``env`` whose values others may read; the rest are secrets (owner only).
    @property
    def plain_env(self) -> Sequence[str]: ...
    @property
    def ports(self) -> Sequence[int]: ...
    @property
    def cpu(self) -> float: ...
    @property
    def ram_gb(self) -> float: ...
    @property
    def storage_gb(self) -> float: ...
    @property
    def gpu(self) -> float: ...
    @property
    def gpu_model(self) -> str | None: ...
    @property
    def gpu_memory_gb(self) -> float | None: ...
    @property
    def priority(self) -> int: ...
    @property
    def preemptible(self) -> bool: ...
    @property
    def cluster_id(self) -> str | None: ...
    @property
    def team_id(self) -> str | None: ...
    @property
    def replicas(self) -> int: ...
    @property
    def gang(self) -> bool: ...
    @property
    def node_selector(self) -> Mapping[str, str]: ...
    @property
    def duration_s(self) -> float | None: ...
    #: Stopped this long after it started, warned before (idle culling's loop).
    @property
    def max_lifetime_s(self) -> int | None: ...


def default_name(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", base).strip("-._") or "workload"
    return f"{base[:100]}-{secrets.token_hex(3)}"


def check_cluster(
    session: Session, cluster_id: str | None, *, lock: bool = False
) -> list[FieldError]:
    """The finding on ``cluster_id``; with ``lock`` (a write about to name it), its row is
    locked against a concurrent delete until the transaction ends."""
    if cluster_id is None:
        return []
    if lock:
        found = lock_cluster_row(session, cluster_id, exclusive=False) is not None
    else:
        found = cluster_exists(session, cluster_id)
    if not found:
        return [FieldError("cluster_id", f"cluster {cluster_id!r} does not exist")]
    return []


def resolve_team(
    session: Session, caller: Caller, team_id: str | None
) -> tuple[str | None, list[FieldError]]:
    """The team a submission counts against. Whoever may submit for any team (admins)
    may name any team or none. Everyone else may name only a team they belong to, and
    without one their work goes to their only team (so nobody escapes a team quota by
    leaving team_id out); members of several teams must say which."""
    if scope_of(caller.role, Permission.WORKLOAD_CREATE) is Scope.ANY:
        if team_id is not None and session.get(TeamRow, team_id) is None:
            return None, [FieldError("team_id", f"team {team_id!r} does not exist")]
        return team_id, []
    membership = load_membership(session, caller.user_id)
    if team_id is not None:
        if not may(
            session, caller, Permission.WORKLOAD_CREATE, Target(team_id=team_id), membership
        ):
            message = f"team {team_id!r} does not exist or you are not a member"
            return None, [FieldError("team_id", message)]
        return team_id, []
    if len(membership.member_of) > 1:
        return None, [FieldError("team_id", "you belong to several teams; say which one")]
    return next(iter(membership.member_of), None), []


#: What the group commit carries: who submits, and the workload as it will be inserted
#: (its ``team_id`` the one asked for, until the writer resolves it in the database).
_Submission = tuple[Caller, Workload]


def create_workload(ctx: ServiceContext, caller: Caller, spec: WorkloadSpec) -> Workload:
    """Validate and queue a workload; the scheduler places it after the commit.

    Concurrent submissions share a transaction (:mod:`gpuyard.services.group_commit`);
    this returns once the one holding this workload has committed."""
    spec = with_catalog_defaults(ctx, caller, spec)
    submission, errors = _submission(ctx, caller, spec)
    if submission is None:
        raise _invalid_with_database_findings(ctx, caller, spec, errors)
    workload = _submissions(ctx).submit(submission)
    if workload.from_pool:
        _after_claim(ctx, workload)
    return workload


async def create_workload_async(
    ctx: ServiceContext, caller: Caller, spec: WorkloadSpec
) -> Workload:
    """:func:`create_workload` for the API's event loop: no worker thread waits for the
    commit (the group commit's writer thread does the writing)."""
    if spec.image_id is not None:  # one read of the catalog, off the loop
        spec = await asyncio.to_thread(with_catalog_defaults, ctx, caller, spec)
    submission, errors = _submission(ctx, caller, spec)
    if submission is None:  # rare: the database is read for the full answer, off the loop
        raise await asyncio.to_thread(_invalid_with_database_findings, ctx, caller, spec, errors)
    workload = await _submissions(ctx).submit_async(submission)
    if workload.from_pool:
        await asyncio.to_thread(_after_claim, ctx, workload)
    return workload


def validated_submission(ctx: ServiceContext, caller: Caller, spec: WorkloadSpec) -> Workload:
    """The workload ``spec`` would insert, checked as a submission is (the same 422s, its
    team resolved), without writing anything: what ``POST /workloads/plan`` plans."""
    spec = with_catalog_defaults(ctx, caller, spec)
    submission, errors = _submission(ctx, caller, spec)
    if submission is None:
        raise _invalid_with_database_findings(ctx, caller, spec, errors)
    workload = submission[1]
    with ctx.db.read() as session:
        team_id, found = _checks_in_database(
            session,
            caller,
            workload.cluster_id,
            workload.team_id,
            gpu_milli=workload.request.gpu_milli,
            whole_gpu_kinds=_whole_gpu_kinds(ctx),
            priority=workload.priority,
            role_limits=_role_priority_limits(ctx),
        )
        fleet = _fleet_capacity(session, ctx.capacity_index, _capacity_shared_kinds(ctx))
        found += _never_fits_findings(
            fleet,
            _pending(
                workload.cluster_id, workload.request, workload.gpu_model, workload.node_selector
            ),
        )
        if not any(f.field == "team_id" for f in found):
            found += _limit_findings(
                session, replace(workload, team_id=team_id), _personal(ctx), fleet
            )
    if found:
        raise InvalidInput.for_fields(found)
    return replace(workload, team_id=team_id)


def with_catalog_defaults(ctx: ServiceContext, caller: Caller, spec: SpecT) -> SpecT:
    """``spec`` as it is without ``image_id``; with it, a copy whose left-out fields hold
    the catalog image's defaults (the rule: ``services/workloads/from_catalog.py``)."""
    if spec.image_id is None:
        return spec
    image = read_catalog_image(ctx, caller, spec.image_id)
    return spec.model_copy(update=catalog_defaults(image, spec))


def _after_claim(ctx: ServiceContext, workload: Workload) -> None:
    """A warm container was taken: relabel it (outside the transaction) and let the pool
    loop refill its pool."""
    relabel_claimed(ctx, workload)
    ctx.pool_wakeup.notify()


def _submission(
    ctx: ServiceContext, caller: Caller, spec: WorkloadSpec
) -> tuple[_Submission | None, list[FieldError]]:
    """The submission, or the errors found without the database."""
    resources = Resources.from_api(
        spec.cpu,
        spec.ram_gb,
        spec.storage_gb,
        spec.gpu,
        shares=ctx.settings.gpu_shares,
        gpu_memory_gb=spec.gpu_memory_gb,
    )
    errors: list[FieldError] = []
    image = (spec.image or "").strip()
    if spec.image is None:
        errors.append(FieldError("image", "required, unless image_id names a catalog image"))
    elif not image:
        errors.append(FieldError("image", "must not be empty"))
    files_path = spec.files_path if spec.files_path is not None else DEFAULT_FILES_PATH
    problem = files_path_problem(files_path)
    if problem is not None:
        errors.append(FieldError("files_path", problem))
    name = spec.name if spec.name is not None else default_name(image)
    if not _NAME.match(name):
        errors.append(FieldError("name", "1-128 characters: letters, digits, '.', '_' or '-'"))
    if resources.is_zero():
        errors.append(FieldError("cpu", "a workload must ask for some resources"))
    if spec.gang and spec.replicas < 2:
        errors.append(FieldError("gang", "gang scheduling needs replicas >= 2"))
    if spec.gpu_model is not None and resources.gpu_milli == 0:
        errors.append(FieldError("gpu_model", "only meaningful with gpu > 0"))
    # The role's cap needs no database; the team's is checked where the team is resolved.
    role_limit = ctx.settings.max_priority_of(caller.role)
    problem = priority_problem(spec.priority, caller.role, role_limit, None, None)
    if problem is not None:
        errors.append(FieldError("priority", problem))
    model_error = model_problem(spec.gpu_model) if spec.gpu_model is not None else None
    if model_error is not None:
        errors.append(FieldError("gpu_model", model_error))
    errors.extend(
        FieldError(f"plain_env.{i}", f"{key!r} is not a key of env")
        for i, key in enumerate(spec.plain_env)
        if key not in spec.env
    )
    if errors:
        return None, errors
    workload = _new_workload(caller, spec, name, resources, ctx.now(), files_path.rstrip("/"))
    return (caller, workload), []


def _new_workload(
    caller: Caller,
    spec: WorkloadSpec,
    name: str,
    request: Resources,
    now: datetime,
    files_path: str = DEFAULT_FILES_PATH,
) -> Workload:
    """The workload a valid submission inserts: pending, placed nowhere."""
    return Workload(
        id=new_id(),
        name=name,
        owner_id=caller.user_id,
        team_id=spec.team_id,
        cluster_id=spec.cluster_id,
        status=WorkloadStatus.PENDING.value,
        reason="waiting for the scheduler",
        reason_code=None,
        image=(spec.image or "").strip(),
        command=list(spec.command) if spec.command is not None else None,
        env=dict(spec.env),
        plain_env_keys=tuple(dict.fromkeys(spec.plain_env)),  # without repeats
        ports=tuple(spec.ports),
        request=request,
        gpu_model=spec.gpu_model,
        priority=spec.priority,
        preemptible=spec.preemptible,
        replicas=spec.replicas,
        gang=spec.gang,
        node_selector=dict(spec.node_selector),
        duration_s=spec.duration_s,
        max_lifetime_s=spec.max_lifetime_s,
        preemption_count=0,
        created_at=now,
        updated_at=now,
        started_at=None,
        finished_at=None,
        placements=(),
        files_path=files_path,
    )


def _invalid_with_database_findings(
    ctx: ServiceContext, caller: Caller, spec: WorkloadSpec, errors: list[FieldError]
) -> InvalidInput:
    """One answer with every problem: the database checks' findings too."""
    gpu_milli = round((spec.gpu or 0) * GPU_MILLI)
    if any(e.field == "gpu_memory_gb" for e in errors):
        memory_mib = 0  # already refused: no second message about it
    else:
        memory_mib = round((spec.gpu_memory_gb or 0) * MIB_PER_GB)
    with ctx.db.read() as session:
        team_id, found = _checks_in_database(
            session,
            caller,
            spec.cluster_id,
            spec.team_id,
            gpu_milli=gpu_milli,
            gpu_memory_mib=memory_mib,
            gpu_model=spec.gpu_model,
            whole_gpu_kinds=_whole_gpu_kinds(ctx),
            priority=spec.priority,
            role_limits=_role_priority_limits(ctx),
        )
        if any(f.field == "priority" for f in found):  # the team's finding names both caps
            errors = [e for e in errors if e.field != "priority"]
        if not any(e.field in _SIZE_FIELDS for e in errors):
            request = Resources.from_api(spec.cpu, spec.ram_gb, spec.storage_gb, spec.gpu)
            fleet = _fleet_capacity(session, ctx.capacity_index, _capacity_shared_kinds(ctx))
            found += _never_fits_findings(
                fleet, _pending(spec.cluster_id, request, spec.gpu_model, spec.node_selector)
            )
            if not any(f.field == "team_id" for f in found):
                found += submission_limit_errors(
                    session,
                    team_id,
                    caller.user_id,
                    request,
                    spec.replicas,
                    spec.gpu_model,
                    _personal(ctx),
                    lambda: fleet.gpu_models(spec.cluster_id),
                )
        return InvalidInput.for_fields(errors + found)


def _limit_findings(
    session: Session, workload: Workload, personal: PersonalQuota | None, fleet: _FleetCapacity
) -> list[FieldError]:
    """The findings on a workload (its team resolved) that could never run within its
    team's, department's or the default quota's limits (services/workloads/limit_checks.py)."""
    return submission_limit_errors(
        session,
        workload.team_id,
        workload.owner_id,
        workload.request,
        workload.replicas,
        workload.gpu_model,
        personal,
        lambda: fleet.gpu_models(workload.cluster_id),
    )


def _personal(ctx: ServiceContext) -> PersonalQuota | None:
    """The default quota of users in no team (settings ``teamless_quota_*``), if any."""
    return ctx.snapshot_cache.personal_quota


#: Fields whose own errors make the feasibility check moot.
_SIZE_FIELDS = frozenset({"cpu", "gpu", "gpu_model"})


def _pending(
    cluster_id: str | None,
    request: Resources,
    gpu_model: str | None,
    node_selector: Mapping[str, str],
) -> PendingWorkload:
    """One replica of a request as the feasibility check reads it."""
    return PendingWorkload(
        workload_id="",
        priority=0,
        submitted_at=0.0,
        resources=request,
        gpu_model=gpu_model,
        cluster_id=cluster_id,
        node_selector=dict(node_selector),
    )


@dataclass(frozen=True, slots=True)
class _FleetCapacity:
    """Every server as the feasibility check reads it, and the clusters whose servers'
    capacity is what other schedulers leave (judged by labels only)."""

    servers: Sequence[ServerView]
    capacity_shared: frozenset[str]

    def gpu_models(self, cluster_id: str | None) -> frozenset[str]:
        """The GPU models of the servers of ``cluster_id`` (of every server for None);
        none when a capacity-shared server is among them (its devices held by foreign
        pods may not be listed now, so the models it has are not known)."""
        scope = [s for s in self.servers if cluster_id is None or s.cluster_id == cluster_id]
        if any(s.cluster_id in self.capacity_shared for s in scope):
            return frozenset()
        return frozenset(gpu.model for server in scope for gpu in server.gpus)


def _fleet_capacity(
    session: Session, capacity: CapacityIndex, shared_kinds: frozenset[str]
) -> _FleetCapacity:
    """The fleet's servers (from the capacity index) and its capacity-shared clusters."""
    shared = clusters_of_kinds(session, shared_kinds) if shared_kinds else set()
    return _FleetCapacity(capacity.servers(session), frozenset(shared))


def never_fits_errors(
    ctx: ServiceContext, session: Session, pending: PendingWorkload
) -> list[FieldError]:
    """The finding (422) on a request no server of its scope could ever hold, even
    empty (scheduler/feasibility.py), naming the field and saying what exists."""
    fleet = _fleet_capacity(session, ctx.capacity_index, _capacity_shared_kinds(ctx))
    return _never_fits_findings(fleet, pending)


def gpu_models_in_scope(
    ctx: ServiceContext, session: Session, cluster_id: str | None
) -> frozenset[str]:
    """The GPU models of the servers work naming ``cluster_id`` may use (the fleet's
    for None): what per-model limits are judged against."""
    fleet = _fleet_capacity(session, ctx.capacity_index, _capacity_shared_kinds(ctx))
    return fleet.gpu_models(cluster_id)


def _never_fits_findings(fleet: _FleetCapacity, pending: PendingWorkload) -> list[FieldError]:
    """``never_fits_errors`` against a fleet read once for a batch of submissions."""
    found = never_fits(pending, fleet.servers, fleet.capacity_shared)
    return [] if found is None else [FieldError(found.field, found.message)]


def _role_priority_limits(ctx: ServiceContext) -> dict[str, int]:
    """{role: the highest priority it may ask for}, from the settings."""
    return {role.value: ctx.settings.max_priority_of(role) for role in Role}


def _whole_gpu_kinds(ctx: ServiceContext) -> frozenset[str]:
    """The cluster kinds whose replicas take whole GPUs only (kubernetes)."""
    return frozenset(ctx.runtimes.kinds_where(whole_gpus_only))


def _capacity_shared_kinds(ctx: ServiceContext) -> frozenset[str]:
    """The cluster kinds whose servers' capacity others share (kubernetes)."""
    return frozenset(ctx.runtimes.kinds_where(capacity_shared))


def _submissions(ctx: ServiceContext) -> GroupCommit[_Submission, Workload]:
    found = ctx.group_commits.get(_SUBMISSIONS)
    if found is None:
        writer = partial(
            _write_submissions,
            whole_gpu_kinds=_whole_gpu_kinds(ctx),
            role_limits=_role_priority_limits(ctx),
            capacity=ctx.capacity_index,
            capacity_shared_kinds=_capacity_shared_kinds(ctx),
            personal=_personal(ctx),
        )
        made = GroupCommit(ctx.db, writer, ctx.scheduler_wakeup.notify)
        found = ctx.group_commits.setdefault(_SUBMISSIONS, made)  # atomic: one wins
    return cast(GroupCommit[_Submission, Workload], found)


def _checks_in_database(
    session: Session,
    caller: Caller,
    cluster_id: str | None,
    team_id: str | None,
    *,
    lock: bool = False,
    gpu_milli: int = 0,
    gpu_memory_mib: int = 0,
    gpu_model: str | None = None,
    whole_gpu_kinds: frozenset[str] = frozenset(),
    priority: int | None = None,
    role_limits: Mapping[str, int] | None = None,
) -> tuple[str | None, list[FieldError]]:
    """The team the submission counts against and every finding that needs the database:
    the cluster, whole GPUs on kubernetes, the team, and the team's priority cap (with
    ``priority`` and ``role_limits``)."""
    errors = check_cluster(session, cluster_id, lock=lock)
    if not errors and gpu_memory_mib:
        # Refused now rather than left pending for ever: no device could ever hold it.
        key = model_key(gpu_model)
        largest = max(
            (
                memory
                for model, memory in largest_gpu_memory_by_model(session, cluster_id).items()
                if device_matches(key, model)
            ),
            default=0,
        )
        if gpu_memory_mib > largest:
            where = "of this cluster" if cluster_id is not None else "of any server"
            which = f"{gpu_model} GPU" if gpu_model else "GPU"
            errors.append(
                FieldError(
                    "gpu_memory_gb",
                    f"no {which} {where} has {gpu_memory_mib / MIB_PER_GB:g} GB of memory: "
                    f"the largest has {largest / MIB_PER_GB:g} GB",
                )
            )
    if not errors and cluster_id is not None and gpu_milli % GPU_MILLI:
        kind = cluster_kind(session, cluster_id)
        if kind in whole_gpu_kinds:
            message = (
                f"a {kind} cluster gives whole GPUs only (its device plugin hands out whole "
                f"devices): ask for a whole number, not {gpu_milli / GPU_MILLI:g}"
            )
            errors.append(FieldError("gpu", message))
    resolved, team_errors = resolve_team(session, caller, team_id)
    if priority is not None and role_limits is not None and resolved is not None:
        team_errors.extend(_team_priority_errors(session, caller, resolved, priority, role_limits))
    return resolved, errors + team_errors


def _team_priority_errors(
    session: Session, caller: Caller, team_id: str, priority: int, role_limits: Mapping[str, int]
) -> list[FieldError]:
    """The finding on ``priority`` where the team caps its work below what is asked."""
    team = session.get(TeamRow, team_id)
    if team is None or team.max_priority is None:
        return []
    role_limit = role_limits.get(caller.role, min(role_limits.values()))
    problem = priority_problem(priority, caller.role, role_limit, team.name, team.max_priority)
    return [FieldError("priority", problem)] if problem is not None else []


def _write_submissions(
    session: Session,
    batch: Sequence[_Submission],
    *,
    whole_gpu_kinds: frozenset[str],
    role_limits: Mapping[str, int],
    capacity: CapacityIndex,
    capacity_shared_kinds: frozenset[str],
    personal: PersonalQuota | None = None,
) -> list[Workload | GpuyardError]:
    """Insert the workloads of ``batch`` that pass the database checks (among them,
    that some server could ever hold one replica: one read of the capacity index per
    batch, and that it asks no more than its limits allow: ``personal`` is the default
    quota of users in no team), with their first event and audit record; one outcome
    per submission (the workload as inserted, not read back)."""
    outcomes: list[Workload | GpuyardError] = []
    fleet = _fleet_capacity(session, capacity, capacity_shared_kinds)
    accepted: list[_Submission] = []
    claimed: list[_Submission] = []
    for caller, workload in batch:
        asked = workload.team_id
        team_id, errors = _checks_in_database(
            session,
            caller,
            workload.cluster_id,
            asked,
            lock=True,
            gpu_milli=workload.request.gpu_milli,
            gpu_memory_mib=workload.request.gpu_memory_mib,
            gpu_model=workload.gpu_model,
            whole_gpu_kinds=whole_gpu_kinds,
            priority=workload.priority,
            role_limits=role_limits,
        )
        errors += _never_fits_findings(
            fleet,
            _pending(
                workload.cluster_id, workload.request, workload.gpu_model, workload.node_selector
            ),
        )
        if team_id != asked:  # the caller's only team, when they named none
            workload = replace(workload, team_id=team_id)
        if not any(e.field == "team_id" for e in errors):
            errors += _limit_findings(session, workload, personal, fleet)
        if errors:
            outcomes.append(InvalidInput.for_fields(errors))
            continue
        accepted.append((caller, workload))
        outcomes.append(workload)
    accepted = _claim_warm_containers(session, accepted, outcomes, claimed)
    if not accepted:
        return outcomes
    workloads = [workload for _caller, workload in accepted]
    insert_workloads(session, workloads, [submission_event(w.id, w.created_at) for w in workloads])
    record_audit_entries(session, [_audit_submission(c, w) for c, w in accepted])
    return outcomes


def _claim_warm_containers(
    session: Session,
    accepted: list[_Submission],
    outcomes: list[Workload | GpuyardError],
    claimed: list[_Submission],
) -> list[_Submission]:
    """Give each accepted submission that matches a pool an available warm container
    (``services/pools/claim.py``), replacing its outcome; the rest, to insert (cold
    starts). Claimed ones are audited here, as workload.create with ``from_pool``."""
    cold: list[_Submission] = []
    for caller, workload in accepted:
        taken = claim_warm_container(session, caller, workload, workload.created_at)
        if taken is None:
            cold.append((caller, workload))
            continue
        outcomes[_outcome_index(outcomes, workload)] = taken
        claimed.append((caller, taken))
    if claimed:
        record_audit_entries(session, [_audit_submission(c, w) for c, w in claimed])
    return cold


def _outcome_index(outcomes: list[Workload | GpuyardError], workload: Workload) -> int:
    return next(i for i, o in enumerate(outcomes) if o is workload)


def _audit_submission(caller: Caller, workload: Workload) -> AuditEntry:
    res = workload.request
    return audit_entry(
        AuditActor.of(caller),
        "workload.create",
        "workload",
        workload.id,
        workload.created_at,
        {
            "name": workload.name,
            "image": workload.image,
            "cpu": res.cpu,
            "ram_gb": res.ram_gb,
            "storage_gb": res.storage_gb,
            "gpu": res.gpu,
            "gpu_memory_gb": res.gpu_memory_gb,
            "priority": workload.priority,
            "cluster_id": workload.cluster_id,
            "team_id": workload.team_id,
            "replicas": workload.replicas,
            "from_pool": workload.from_pool,
        },
    )


def load_workload(
    session: Session,
    caller: Caller,
    workload_id: str,
    permission: Permission = Permission.WORKLOAD_READ,
) -> WorkloadRow:
    """The workload, if the policy lets the caller exercise ``permission`` on it:
    NotFound when they may not see it (or it does not exist), Forbidden when they may
    see it but not do this."""
    row = workload_row(session, workload_id)
    if row is None:
        raise NotFound.for_object("workload", workload_id)
    check_object(
        session,
        caller,
        permission,
        workload_target(row),
        read=Permission.WORKLOAD_READ,
        kind="workload",
        object_id=workload_id,
    )
    return row


def get_workload(ctx: ServiceContext, caller: Caller, workload_id: str) -> Workload:
    """The workload, if the caller may read it (NotFound otherwise)."""
    with ctx.db.read() as session:
        return workload_record(load_workload(session, caller, workload_id))


def list_workloads(
    ctx: ServiceContext, caller: Caller, where: WorkloadFilter, limit: int, offset: int
) -> tuple[list[Workload], int]:
    """Visible workloads matching ``where``, newest first, with the total count."""
    with ctx.db.read() as session:
        return find_workloads(session, visible_workloads(caller), where, limit, offset)


def list_workload_events(
    ctx: ServiceContext, caller: Caller, workload_id: str, limit: int, offset: int
) -> tuple[list[WorkloadEvent], int]:
    """Status history of a workload, oldest first (it reads as a story)."""
    with ctx.db.read() as session:
        load_workload(session, caller, workload_id)
        return find_events(session, workload_id, limit, offset)
