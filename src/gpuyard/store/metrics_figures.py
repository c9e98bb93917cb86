"""What GET /metrics reads of the fleet and the queue, as plain tuples (a few Core
statements per scrape, whatever the fleet's size). Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpuyard.store.base import as_utc_or_none
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.workload_tables import WorkloadRow


class ServerFigures(NamedTuple):
    """One server's counters, in internal units (millicores, MiB, GPU milli)."""

    id: str
    name: str
    cluster: str
    kind: str
    status: str
    cpu_milli: tuple[int, int]  # (allocated, capacity)
    ram_mib: tuple[int, int]
    storage_mib: tuple[int, int]
    gpu_milli: tuple[int, int]
    missed_probes: int
    last_seen_at: datetime | None


class GpuFigures(NamedTuple):
    server_id: str
    gpu_index: int
    uuid: str
    model: str
    memory_mib: int
    allocated_milli: int
    #: The last probe's reading (docker servers), percent; None when never reported.
    utilization_pct: float | None


class QueueDepth(NamedTuple):
    team: str | None  # the team's name; None: workloads without a team
    priority: int
    workloads: int


def server_figures(session: Session) -> list[ServerFigures]:
    """Every server with its cluster, status and counters, in name order."""
    rows = session.execute(
        select(
            ServerRow.id,
            ServerRow.name,
            ClusterRow.name,
            ClusterRow.kind,
            ServerRow.status,
            ServerRow.alloc_cpu_milli,
            ServerRow.cpu_milli,
            ServerRow.alloc_ram_mib,
            ServerRow.ram_mib,
            ServerRow.alloc_storage_mib,
            ServerRow.storage_mib,
            ServerRow.alloc_gpu_milli,
            ServerRow.gpu_milli,
            ServerRow.missed_probes,
            ServerRow.last_seen_at,
        )
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .order_by(ServerRow.name)
    )
    return [
        ServerFigures(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            (r[5], r[6]),
            (r[7], r[8]),
            (r[9], r[10]),
            (r[11], r[12]),
            r[13],
            as_utc_or_none(r[14]),
        )
        for r in rows
    ]


def gpu_figures(session: Session) -> list[GpuFigures]:
    """Every GPU of every server, by server and index."""
    rows = session.execute(
        select(
            ServerGpuRow.server_id,
            ServerGpuRow.gpu_index,
            ServerGpuRow.uuid,
            ServerGpuRow.model,
            ServerGpuRow.memory_mib,
            ServerGpuRow.allocated_milli,
            ServerGpuRow.utilization_pct,
        ).order_by(ServerGpuRow.server_id, ServerGpuRow.gpu_index)
    )
    return [GpuFigures(*row) for row in rows]


def workloads_by_status(session: Session) -> dict[str, int]:
    """How many workloads are in each status (statuses with none are absent)."""
    rows = session.execute(
        select(WorkloadRow.status, func.count()).group_by(WorkloadRow.status)
    ).all()
    return {status: count for status, count in rows}


def pending_by_reason(session: Session) -> dict[str | None, int]:
    """Pending workloads by their reason code (None: not yet considered by a cycle)."""
    rows = session.execute(
        select(WorkloadRow.reason_code, func.count())
        .where(WorkloadRow.status == "pending")
        .group_by(WorkloadRow.reason_code)
    ).all()
    return {code: count for code, count in rows}


def queue_depths(session: Session) -> list[QueueDepth]:
    """Pending workloads per team and priority."""
    rows = session.execute(
        select(TeamRow.name, WorkloadRow.priority, func.count())
        .select_from(WorkloadRow)
        .outerjoin(TeamRow, TeamRow.id == WorkloadRow.team_id)
        .where(WorkloadRow.status == "pending")
        .group_by(TeamRow.name, WorkloadRow.priority)
    ).all()
    return [QueueDepth(team, priority, count) for team, priority, count in rows]
