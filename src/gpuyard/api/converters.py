"""Rows to public schemas: one named function each."""

from __future__ import annotations

from gpuyard.api.schemas.common import ResourcesPublic
from gpuyard.api.schemas.fleet import ClusterPublic, GpuPublic, ServerPublic
from gpuyard.api.schemas.workloads import (
    PlacementPublic,
    PortPublic,
    WorkloadEventPublic,
    WorkloadPublic,
)
from gpuyard.auth.caller import Caller
from gpuyard.domain.resources import MIB_PER_GB, Resources
from gpuyard.services.identity.access import visible_env
from gpuyard.services.names import DisplayNames
from gpuyard.store.base import as_utc
from gpuyard.store.conversions import server_allocated, server_capacity, workload_request
from gpuyard.store.fleet_tables import ClusterRow, ServerRow
from gpuyard.store.workload_tables import WorkloadEventRow, WorkloadRow


def resources_public(value: Resources) -> ResourcesPublic:
    return ResourcesPublic(
        cpu=value.cpu, ram_gb=value.ram_gb, storage_gb=value.storage_gb, gpu=value.gpu
    )


def cluster_public(row: ClusterRow) -> ClusterPublic:
    return ClusterPublic(
        id=row.id,
        name=row.name,
        kind=row.kind,
        has_kubeconfig=row.kubeconfig_enc is not None,
        created_at=as_utc(row.created_at),
    )


def server_public(row: ServerRow) -> ServerPublic:
    return ServerPublic(
        id=row.id,
        name=row.name,
        cluster_id=row.cluster_id,
        status=row.status,
        agent_url=row.agent_url,
        last_seen_at=as_utc(row.last_seen_at) if row.last_seen_at else None,
        labels=dict(row.labels or {}),
        capacity=resources_public(server_capacity(row)),
        allocated=resources_public(server_allocated(row)),
        gpus=[
            GpuPublic(
                index=g.gpu_index,
                uuid=g.uuid,
                model=g.model,
                memory_gb=round(g.memory_mib / MIB_PER_GB, 2),
                allocated_milli=g.allocated_milli,
                utilization=g.utilization_pct,
            )
            for g in row.gpus
        ],
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def workload_public(row: WorkloadRow, names: DisplayNames, reader: Caller) -> WorkloadPublic:
    """``reader``: who asks; env values are secrets outside the owner (visible_env)."""
    request = workload_request(row)
    placements = [
        PlacementPublic(
            replica=a.replica,
            server_id=a.server_id,
            server_name=names.servers.get(a.server_id, a.server_id),
            gpu_indices=[int(i) for i, _ in a.gpu_allocation],
            gpu_milli={int(i): int(m) for i, m in a.gpu_allocation},
        )
        for a in row.allocations
    ]
    first = placements[0] if placements else None
    return WorkloadPublic(
        id=row.id,
        name=row.name,
        owner=names.users.get(row.owner_id, row.owner_id),
        owner_id=row.owner_id,
        team_id=row.team_id,
        cluster_id=row.cluster_id,
        status=row.status,
        reason=row.reason,
        reason_code=row.reason_code,
        image=row.image,
        command=row.command,
        env=visible_env(reader, row),
        plain_env=list(row.plain_env_keys or []),
        ports=_ports_public(row, names),
        cpu=request.cpu,
        ram_gb=request.ram_gb,
        storage_gb=request.storage_gb,
        gpu=request.gpu,
        gpu_model=row.gpu_model,
        priority=row.priority,
        preemptible=row.preemptible,
        replicas=row.replicas,
        gang=row.gang,
        node_selector=dict(row.node_selector or {}),
        duration_s=row.duration_s,
        server_id=first.server_id if first else None,
        server_name=first.server_name if first else None,
        gpu_indices=first.gpu_indices if first else [],
        placements=placements,
        preemption_count=row.preemption_count,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        started_at=as_utc(row.started_at) if row.started_at else None,
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
    )


def _ports_public(row: WorkloadRow, names: DisplayNames) -> list[PortPublic]:
    """Replica 0's ports: the host port allocated on its server, and a URL when known."""
    first = row.allocations[0] if row.allocations else None
    taken = names.host_ports.get(first.id, {}) if first else {}
    host = names.server_hosts.get(first.server_id) if first else None
    ports = []
    for container_port in row.ports or []:
        host_port = taken.get(int(container_port))
        url = f"http://{host}:{host_port}" if host and host_port else None
        ports.append(PortPublic(container_port=container_port, host_port=host_port, url=url))
    return ports


def event_public(row: WorkloadEventRow) -> WorkloadEventPublic:
    return WorkloadEventPublic(
        id=row.id,
        at=as_utc(row.at),
        from_status=row.from_status,
        to_status=row.to_status,
        reason=row.reason,
        details=dict(row.details or {}),
    )
