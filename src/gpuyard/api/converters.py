"""Read models to public schemas: one named function each."""

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
from gpuyard.domain.fleet_records import Cluster, Server
from gpuyard.domain.resources import MIB_PER_GB, Resources
from gpuyard.domain.routing import RouteKey
from gpuyard.domain.workload_records import Workload, WorkloadEvent
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.identity.access import visible_env
from gpuyard.services.names import DisplayNames


def resources_public(value: Resources) -> ResourcesPublic:
    return ResourcesPublic(
        cpu=value.cpu, ram_gb=value.ram_gb, storage_gb=value.storage_gb, gpu=value.gpu
    )


def cluster_public(cluster: Cluster) -> ClusterPublic:
    return ClusterPublic(
        id=cluster.id,
        name=cluster.name,
        kind=cluster.kind,
        has_kubeconfig=cluster.has_kubeconfig,
        created_at=cluster.created_at,
    )


def server_public(server: Server) -> ServerPublic:
    return ServerPublic(
        id=server.id,
        name=server.name,
        cluster_id=server.cluster_id,
        status=server.status,
        agent_url=server.agent_url,
        last_seen_at=server.last_seen_at,
        labels=dict(server.labels),
        capacity=resources_public(server.capacity),
        allocated=resources_public(server.allocated),
        gpus=[
            GpuPublic(
                index=g.index,
                uuid=g.uuid,
                model=g.model,
                memory_gb=round(g.memory_mib / MIB_PER_GB, 2),
                allocated_milli=g.allocated_milli,
                allocated_memory_gb=round(g.allocated_memory_mib / MIB_PER_GB, 3),
                utilization=g.utilization_pct,
            )
            for g in server.gpus
        ],
        created_at=server.created_at,
        updated_at=server.updated_at,
    )


def workload_public(workload: Workload, names: DisplayNames, reader: Caller) -> WorkloadPublic:
    """``reader``: who asks; env values are secrets outside the owner (visible_env)."""
    request = workload.request
    placements = [
        PlacementPublic(
            replica=p.replica,
            server_id=p.server_id,
            server_name=names.servers.get(p.server_id, p.server_id),
            gpu_indices=[i for i, _ in p.gpus],
            gpu_milli=dict(p.gpus),
        )
        for p in workload.placements
    ]
    first = placements[0] if placements else None
    return WorkloadPublic(
        id=workload.id,
        name=workload.name,
        owner=names.users.get(workload.owner_id, workload.owner_id),
        owner_id=workload.owner_id,
        team_id=workload.team_id,
        cluster_id=workload.cluster_id,
        status=workload.status,
        reason=workload.reason,
        reason_code=workload.reason_code,
        image=workload.image,
        command=workload.command,
        env=visible_env(reader, workload),
        plain_env=list(workload.plain_env_keys),
        ports=_ports_public(workload, names),
        cpu=request.cpu,
        ram_gb=request.ram_gb,
        storage_gb=request.storage_gb,
        gpu=request.gpu,
        gpu_memory_gb=request.gpu_memory_gb or None,
        gpu_model=workload.gpu_model,
        priority=workload.priority,
        preemptible=workload.preemptible,
        replicas=workload.replicas,
        gang=workload.gang,
        node_selector=dict(workload.node_selector),
        duration_s=workload.duration_s,
        server_id=first.server_id if first else None,
        server_name=first.server_name if first else None,
        gpu_indices=first.gpu_indices if first else [],
        placements=placements,
        preemption_count=workload.preemption_count,
        created_at=workload.created_at,
        updated_at=workload.updated_at,
        started_at=workload.started_at,
        finished_at=workload.finished_at,
        from_pool=workload.from_pool,
        pool_id=workload.pool_id,
        files_path=workload.files_path,
        max_lifetime_s=workload.max_lifetime_s,
    )


def _ports_public(workload: Workload, names: DisplayNames) -> list[PortPublic]:
    """Replica 0's ports: the host port allocated on its server, a URL when known, and
    the route's URL while per-user routing publishes it (running, with a host port)."""
    first = workload.placements[0] if workload.placements else None
    taken = names.host_ports.get(first.allocation_id, {}) if first else {}
    host = names.server_hosts.get(first.server_id) if first else None
    user = names.route_users.get(workload.owner_id)
    routed = (
        names.route_base is not None
        and user is not None
        and host is not None
        and workload.status == WorkloadStatus.RUNNING.value
    )
    ports = []
    for container_port in workload.ports:
        host_port = taken.get(int(container_port))
        url = f"http://{host}:{host_port}" if host and host_port else None
        route_url = None
        if routed and host_port and user is not None:
            path = RouteKey(user, workload.id, int(container_port)).path
            route_url = f"{names.route_base}{path}"
        ports.append(
            PortPublic(
                container_port=container_port, host_port=host_port, url=url, route_url=route_url
            )
        )
    return ports


def event_public(event: WorkloadEvent) -> WorkloadEventPublic:
    return WorkloadEventPublic(
        id=event.id,
        at=event.at,
        from_status=event.from_status,
        to_status=event.to_status,
        reason=event.reason,
        details=dict(event.details),
    )
