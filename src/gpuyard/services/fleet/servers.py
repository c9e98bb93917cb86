"""Servers: register, list, change status/labels, remove."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import cluster_of_kind, ensure_server_name_free
from gpuyard.services.fleet.docker_servers import DockerServerSpec, create_docker_server
from gpuyard.services.fleet.server_status import change_server_status
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.settings import parse_port_range
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.workload_tables import AllocationRow


@dataclass
class GpuSpec:
    model: str
    memory_gb: float = 0
    uuid: str | None = None


@dataclass
class SimulatedServerSpec:
    name: str
    cluster_id: str
    cpu: float
    ram_gb: float
    storage_gb: float = 0
    gpus: list[GpuSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerRegistration:
    """A POST /servers body: the simulated shape or the docker shape."""

    name: str
    cluster_id: str
    cpu: float | None = None
    ram_gb: float | None = None
    storage_gb: float = 0
    gpus: list[GpuSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    agent_url: str | None = None
    agent_token: str | None = None
    host_ports: str | None = None


def register_server(ctx: ServiceContext, caller: Caller, spec: ServerRegistration) -> ServerRow:
    """Register a server of either shape; the wrong shape for the cluster kind is a 422
    naming the field that does not belong (or is missing)."""
    with ctx.db.read() as session:
        cluster = session.get(ClusterRow, spec.cluster_id)
        kind = cluster.kind if cluster else None
    docker_fields = {"agent_url": spec.agent_url, "agent_token": spec.agent_token}
    if kind == ClusterKind.DOCKER.value or any(v is not None for v in docker_fields.values()):
        for name, given in (("cpu", spec.cpu), ("ram_gb", spec.ram_gb)):
            if given is not None:
                raise InvalidInput.for_field(
                    name, "docker servers report their capacity through the agent"
                )
        if spec.gpus:
            raise InvalidInput.for_field("gpus", "docker servers report their GPUs")
        for name, text in docker_fields.items():
            if not text:
                raise InvalidInput.for_field(name, "required for a docker server")
        assert spec.agent_url is not None
        assert spec.agent_token is not None
        ports = None
        if spec.host_ports:
            try:
                ports = parse_port_range(spec.host_ports)
            except ValueError as exc:
                raise InvalidInput.for_field("host_ports", str(exc)) from exc
        return create_docker_server(
            ctx,
            caller,
            DockerServerSpec(
                spec.name, spec.cluster_id, spec.agent_url, spec.agent_token, spec.labels, ports
            ),
        )
    if spec.host_ports is not None:
        raise InvalidInput.for_field("host_ports", "only docker servers publish ports")
    for name, declared in (("cpu", spec.cpu), ("ram_gb", spec.ram_gb)):
        if declared is None:
            raise InvalidInput.for_field(name, "field required")
    assert spec.cpu is not None
    assert spec.ram_gb is not None
    simulated = SimulatedServerSpec(
        spec.name, spec.cluster_id, spec.cpu, spec.ram_gb, spec.storage_gb, spec.gpus, spec.labels
    )
    return create_server(ctx, caller, simulated)


def create_server(ctx: ServiceContext, caller: Caller, spec: SimulatedServerSpec) -> ServerRow:
    """Register a simulated server, which declares its capacity."""
    capacity = Resources.from_api(spec.cpu, spec.ram_gb, spec.storage_gb, 0)
    now = ctx.now()
    with ctx.db.write() as session:
        cluster = cluster_of_kind(
            session,
            spec.cluster_id,
            ClusterKind.SIMULATED,
            "cluster_id",
            "only simulated servers can be registered by declaring capacity",
        )
        ensure_server_name_free(session, spec.name)
        row = ServerRow(
            name=spec.name,
            cluster_id=cluster.id,
            status=ServerStatus.ONLINE.value,
            labels=dict(spec.labels),
            cpu_milli=capacity.cpu_milli,
            ram_mib=capacity.ram_mib,
            storage_mib=capacity.storage_mib,
            gpu_milli=GPU_MILLI * len(spec.gpus),
            created_at=now,
            updated_at=now,
            gpus=[],  # loaded (even when empty), so the row is usable after the session ends
        )
        for index, gpu in enumerate(spec.gpus):
            row.gpus.append(
                ServerGpuRow(
                    gpu_index=index,
                    uuid=gpu.uuid or f"GPU-sim-{spec.name}-{index}",
                    model=gpu.model,
                    memory_mib=int(gpu.memory_gb * MIB_PER_GB),
                )
            )
        session.add(row)
        session.flush()
        details = {
            "name": row.name,
            "cluster_id": row.cluster_id,
            "cpu": capacity.cpu,
            "ram_gb": capacity.ram_gb,
            "storage_gb": capacity.storage_gb,
            "gpus": len(spec.gpus),
        }
        record_audit(
            session, AuditActor.of(caller), "server.create", "server", row.id, now, details
        )
    ctx.scheduler_wakeup.notify()
    return row


def list_servers(
    ctx: ServiceContext,
    cluster_id: str | None,
    status: ServerStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[ServerRow], int]:
    query = select(ServerRow)
    if cluster_id:
        query = query.where(ServerRow.cluster_id == cluster_id)
    if status:
        query = query.where(ServerRow.status == status.value)
    with ctx.db.read() as session:
        count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(ServerRow.name).limit(limit).offset(offset)).all()
        return list(rows), count


def get_server(ctx: ServiceContext, server_id: str) -> ServerRow:
    with ctx.db.read() as session:
        row = session.get(ServerRow, server_id)
        if row is None:
            raise NotFound.for_object("server", server_id)
        return row


def update_server(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    status: ServerStatus | None,
    labels: dict[str, str] | None,
) -> ServerRow:
    """Drain, put in maintenance, bring online, or relabel a server."""
    if status is ServerStatus.OFFLINE:
        raise InvalidInput(
            "offline is observed by the health loop, not set",
            [FieldError("status", "must be one of online, draining, maintenance")],
        )
    with ctx.db.write() as session:
        row = session.get(ServerRow, server_id)
        if row is None:
            raise NotFound.for_object("server", server_id)
        if status is not None:
            reason = f"set to {status.value} by an administrator"
            change_server_status(session, row, status, reason, AuditActor.of(caller), ctx.now())
        if labels is not None:
            row.labels = dict(labels)
        row.updated_at = ctx.now()
        changed: dict[str, object] = {"name": row.name}
        if status is not None:
            changed["status"] = status.value
        if labels is not None:
            changed["labels"] = dict(labels)
        record_audit(
            session, AuditActor.of(caller), "server.update", "server", row.id, ctx.now(), changed
        )
    ctx.scheduler_wakeup.notify()
    return row


def delete_server(ctx: ServiceContext, caller: Caller, server_id: str) -> None:
    """Remove a server that holds no reservations (drain it first)."""
    with ctx.db.write() as session:
        row = session.get(ServerRow, server_id)
        if row is None:
            raise NotFound.for_object("server", server_id)
        held = session.scalar(
            select(func.count()).select_from(AllocationRow).where(AllocationRow.server_id == row.id)
        )
        if held:
            raise Conflict(
                f"server {row.name!r} still holds {held} reservation(s); drain it and stop "
                "its workloads first"
            )
        record_audit(
            session,
            AuditActor.of(caller),
            "server.delete",
            "server",
            row.id,
            ctx.now(),
            {"name": row.name},
        )
        session.delete(row)
