"""Idle culling's policies and the culling loop's per-workload memory (issue 19).

Plain values in and out (``domain/culling.py``); the tables are ``culling_tables.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gpuyard.domain.culling import (
    CullMode,
    CullState,
    PolicyScope,
    PolicySettings,
    StoredPolicy,
)
from gpuyard.domain.usage import GpuLoad, GpuReading
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.store.base import as_utc, as_utc_or_none
from gpuyard.store.culling_tables import CullingPolicyRow, WorkloadCullingRow
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.image_tables import ImageRow
from gpuyard.store.usage_tables import UsageReadingRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def _policy_of(row: CullingPolicyRow) -> StoredPolicy:
    scope = PolicyScope.TEAM if row.team_id is not None else PolicyScope.IMAGE_TYPE
    return StoredPolicy(
        scope=scope,
        subject=row.team_id if row.team_id is not None else str(row.image_type),
        settings=PolicySettings(
            mode=CullMode(row.mode) if row.mode is not None else None,
            threshold_pct=row.threshold_pct,
            window_s=row.window_s,
            max_lifetime_s=row.max_lifetime_s,
        ),
        updated_by=row.updated_by,
        updated_at=as_utc(row.updated_at),
    )


def _subject_column(scope: PolicyScope) -> Any:
    return CullingPolicyRow.team_id if scope is PolicyScope.TEAM else CullingPolicyRow.image_type


def list_policies(session: Session, scope: PolicyScope | None = None) -> list[StoredPolicy]:
    """Every stored policy (of one scope when given), teams first, then by subject."""
    query = select(CullingPolicyRow)
    if scope is not None:
        query = query.where(_subject_column(scope).is_not(None))
    found = [_policy_of(row) for row in session.scalars(query)]
    return sorted(found, key=lambda p: (p.scope is not PolicyScope.TEAM, p.subject))


def get_policy(session: Session, scope: PolicyScope, subject: str) -> StoredPolicy | None:
    row = session.scalars(
        select(CullingPolicyRow).where(_subject_column(scope) == subject)
    ).one_or_none()
    return _policy_of(row) if row is not None else None


def put_policy(
    session: Session,
    scope: PolicyScope,
    subject: str,
    settings: PolicySettings,
    updated_by: str | None,
    now: datetime,
) -> StoredPolicy:
    """Set (insert or replace) the policy of one team or image type."""
    row = session.scalars(
        select(CullingPolicyRow).where(_subject_column(scope) == subject).with_for_update()
    ).one_or_none()
    if row is None:
        row = CullingPolicyRow(
            team_id=subject if scope is PolicyScope.TEAM else None,
            image_type=subject if scope is PolicyScope.IMAGE_TYPE else None,
        )
        session.add(row)
    row.mode = settings.mode.value if settings.mode is not None else None
    row.threshold_pct = settings.threshold_pct
    row.window_s = settings.window_s
    row.max_lifetime_s = settings.max_lifetime_s
    row.updated_by = updated_by
    row.updated_at = now
    session.flush()
    return _policy_of(row)


def delete_policy(session: Session, scope: PolicyScope, subject: str) -> bool:
    """Remove a policy (the level then inherits); whether there was one."""
    result = session.execute(delete(CullingPolicyRow).where(_subject_column(scope) == subject))
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class ReplicaPlace:
    """Where one replica of a running workload holds its reservation."""

    server_id: str
    server_name: str
    kind: str
    handle: str | None
    cpu_milli: int
    gpus: tuple[GpuLoad, ...]


@dataclass(frozen=True)
class CullCandidate:
    """A running workload as the culling loop needs it."""

    workload_id: str
    version: int
    name: str
    team_id: str | None
    image: str
    command: tuple[str, ...] | None
    duration_s: float | None
    max_lifetime_s: int | None
    started_at: datetime | None
    replicas: tuple[ReplicaPlace, ...]


def any_running_with_lifetime(session: Session) -> bool:
    """Whether a running workload has a maximum lifetime of its own."""
    found = session.scalar(
        select(WorkloadRow.id)
        .where(WorkloadRow.status == WorkloadStatus.RUNNING.value)
        .where(WorkloadRow.max_lifetime_s.is_not(None))
        .limit(1)
    )
    return found is not None


def running_page(session: Session, after: str | None, limit: int) -> list[CullCandidate]:
    """Running workloads (warm containers waiting in their pool excluded: idle by design)
    in id order after ``after``, at most ``limit``, with their placements (three
    statements)."""
    query = (
        select(
            WorkloadRow.id,
            WorkloadRow.version,
            WorkloadRow.name,
            WorkloadRow.team_id,
            WorkloadRow.image,
            WorkloadRow.command,
            WorkloadRow.duration_s,
            WorkloadRow.max_lifetime_s,
            WorkloadRow.started_at,
        )
        .where(WorkloadRow.status == WorkloadStatus.RUNNING.value)
        .where((WorkloadRow.pool_state.is_(None)) | (WorkloadRow.pool_state != "available"))
        .order_by(WorkloadRow.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(WorkloadRow.id > after)
    rows = session.execute(query).all()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    placements = session.execute(
        select(
            AllocationRow.workload_id,
            AllocationRow.server_id,
            ServerRow.name,
            ClusterRow.kind,
            AllocationRow.container_id,
            AllocationRow.cpu_milli,
            AllocationRow.gpu_allocation,
        )
        .join(ServerRow, ServerRow.id == AllocationRow.server_id)
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(AllocationRow.workload_id.in_(ids))
        .order_by(AllocationRow.workload_id, AllocationRow.replica)
    ).all()
    servers = {p[1] for p in placements}
    memory = {
        (server_id, index): memory_mib
        for server_id, index, memory_mib in session.execute(
            select(ServerGpuRow.server_id, ServerGpuRow.gpu_index, ServerGpuRow.memory_mib).where(
                ServerGpuRow.server_id.in_(servers)
            )
        )
    }
    by_workload: dict[str, list[ReplicaPlace]] = {}
    for workload_id, server_id, server_name, kind, handle, cpu_milli, gpu_allocation in placements:
        gpus = tuple(
            GpuLoad(int(i), int(m), memory.get((server_id, int(i)), 0))
            for i, m in gpu_allocation or []
        )
        by_workload.setdefault(workload_id, []).append(
            ReplicaPlace(server_id, server_name, kind, handle, cpu_milli, gpus)
        )
    return [
        CullCandidate(
            workload_id=r[0],
            version=r[1],
            name=r[2],
            team_id=r[3],
            image=r[4],
            command=tuple(r[5]) if r[5] is not None else None,
            duration_s=r[6],
            max_lifetime_s=r[7],
            started_at=as_utc_or_none(r[8]),
            replicas=tuple(by_workload.get(r[0], ())),
        )
        for r in rows
    ]


def image_types_by_reference(session: Session, references: Iterable[str]) -> dict[str, str]:
    """Catalog images' types by their reference (a workload's image type)."""
    wanted = set(references)
    if not wanted:
        return {}
    rows = session.execute(
        select(ImageRow.reference, ImageRow.type)
        .where(ImageRow.reference.in_(wanted))
        .order_by(ImageRow.name)
    )
    found: dict[str, str] = {}
    for reference, image_type in rows:
        found.setdefault(reference, image_type)  # two entries of one reference: the first
    return found


@dataclass(frozen=True)
class StoredCullState:
    state: CullState
    cpu_seconds: float | None
    cpu_seen_at: datetime | None


def _state_of(row: WorkloadCullingRow) -> StoredCullState:
    return StoredCullState(
        CullState(
            idle_since=as_utc_or_none(row.idle_since),
            idle_peak_pct=row.idle_peak_pct,
            idle_warned_at=as_utc_or_none(row.idle_warned_at),
            idle_stop_at=as_utc_or_none(row.idle_stop_at),
            lifetime_warned_at=as_utc_or_none(row.lifetime_warned_at),
            lifetime_stop_at=as_utc_or_none(row.lifetime_stop_at),
            unsupported_noted=row.unsupported_noted,
            no_signal_reason=row.no_signal_reason,
        ),
        row.cpu_seconds,
        as_utc_or_none(row.cpu_seen_at),
    )


def cull_states(session: Session, workload_ids: Sequence[str]) -> dict[str, StoredCullState]:
    """The loop's memory of these workloads (those it has one of)."""
    if not workload_ids:
        return {}
    rows = session.scalars(
        select(WorkloadCullingRow).where(WorkloadCullingRow.workload_id.in_(workload_ids))
    )
    return {row.workload_id: _state_of(row) for row in rows}


def cull_state(session: Session, workload_id: str) -> StoredCullState | None:
    row = session.get(WorkloadCullingRow, workload_id)
    return _state_of(row) if row is not None else None


def save_cull_state(
    session: Session, workload_id: str, stored: StoredCullState, now: datetime
) -> None:
    """Keep the loop's memory of one workload (insert or replace)."""
    row = session.get(WorkloadCullingRow, workload_id)
    if row is None:
        row = WorkloadCullingRow(workload_id=workload_id)
        session.add(row)
    state = stored.state
    row.idle_since = state.idle_since
    row.idle_peak_pct = state.idle_peak_pct
    row.idle_warned_at = state.idle_warned_at
    row.idle_stop_at = state.idle_stop_at
    row.lifetime_warned_at = state.lifetime_warned_at
    row.lifetime_stop_at = state.lifetime_stop_at
    row.unsupported_noted = state.unsupported_noted
    row.no_signal_reason = (state.no_signal_reason or "")[:300] or None
    row.cpu_seconds = stored.cpu_seconds
    row.cpu_seen_at = stored.cpu_seen_at
    row.updated_at = now
    session.flush()


def forget_finished(session: Session) -> int:
    """Drop the memory of workloads that no longer run (a restarted workload starts over)."""
    running = select(WorkloadRow.id).where(WorkloadRow.status == WorkloadStatus.RUNNING.value)
    result = session.execute(
        delete(WorkloadCullingRow).where(WorkloadCullingRow.workload_id.not_in(running))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def gpu_readings_since(
    session: Session, server_ids: Iterable[str], since: datetime
) -> dict[str, tuple[GpuReading, ...]]:
    """Each server's GPUs in its agent's last reading, if taken at or after ``since``."""
    wanted = set(server_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(UsageReadingRow.server_id, UsageReadingRow.gpus).where(
            UsageReadingRow.server_id.in_(wanted), UsageReadingRow.at >= since
        )
    )
    return {
        server_id: tuple(GpuReading(int(g[0]), g[1], g[2]) for g in gpus or [])
        for server_id, gpus in rows
    }
