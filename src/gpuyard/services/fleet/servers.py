"""Servers: register, list, change status/labels, remove."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.fleet_records import Gpu, Server
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.runtimes.registry import reports_inventory
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import cluster_of_kind, ensure_server_name_free
from gpuyard.services.fleet.docker_servers import DockerServerSpec, create_docker_server
from gpuyard.services.fleet.server_status import change_server_status
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.settings import parse_port_range
from gpuyard.store.fleet import (
    NewServer,
    add_server,
    cluster_kind,
    find_servers,
    reservations_on,
    server_record,
    server_row,
)
from gpuyard.store.fleet_tables import ServerRow


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


def register_server(ctx: ServiceContext, caller: Caller, spec: ServerRegistration) -> Server:
    """Register a server of either shape; the wrong shape for the cluster kind is a 422
    naming the field that does not belong (or is missing)."""
    with ctx.db.read() as session:
        kind = cluster_kind(session, spec.cluster_id)
    docker_fields = {"agent_url": spec.agent_url, "agent_token": spec.agent_token}
    # A server whose runtime reports its capacity registers by where to ask (docker: its
    # agent), never by declared numbers.
    reported = kind in ctx.runtimes.kinds_where(reports_inventory)
    if reported or any(v is not None for v in docker_fields.values()):
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
        docker = DockerServerSpec(
            spec.name, spec.cluster_id, spec.agent_url, spec.agent_token, spec.labels, ports
        )
        # The row comes back loaded with its GPUs (detached: the agent was asked outside
        # the transaction), so mapping it reads nothing more.
        return server_record(create_docker_server(ctx, caller, docker))
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


def create_server(ctx: ServiceContext, caller: Caller, spec: SimulatedServerSpec) -> Server:
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
        gpus = [
            Gpu(
                index=index,
                uuid=gpu.uuid or f"GPU-sim-{spec.name}-{index}",
                model=gpu.model,
                memory_mib=int(gpu.memory_gb * MIB_PER_GB),
                allocated_milli=0,
                utilization_pct=None,
            )
            for index, gpu in enumerate(spec.gpus)
        ]
        with_gpus = Resources(
            capacity.cpu_milli, capacity.ram_mib, capacity.storage_mib, GPU_MILLI * len(gpus)
        )
        server = add_server(
            session,
            NewServer(spec.name, cluster.id, ServerStatus.ONLINE.value, dict(spec.labels)),
            with_gpus,
            gpus,
            now,
        )
        details = {
            "name": server.name,
            "cluster_id": server.cluster_id,
            "cpu": capacity.cpu,
            "ram_gb": capacity.ram_gb,
            "storage_gb": capacity.storage_gb,
            "gpus": len(spec.gpus),
        }
        record_audit(
            session, AuditActor.of(caller), "server.create", "server", server.id, now, details
        )
    ctx.scheduler_wakeup.notify()
    return server


def list_servers(
    ctx: ServiceContext,
    cluster_id: str | None,
    status: ServerStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[Server], int]:
    """Servers by name, narrowed to a cluster and a status when given, with the count."""
    with ctx.db.read() as session:
        return find_servers(session, cluster_id, status.value if status else None, limit, offset)


def get_server(ctx: ServiceContext, server_id: str) -> Server:
    """The server with its GPUs (NotFound when there is none)."""
    with ctx.db.read() as session:
        row = server_row(session, server_id)
        if row is None:
            raise NotFound.for_object("server", server_id)
        return server_record(row)


def update_server(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    status: ServerStatus | None,
    labels: dict[str, str] | None,
) -> None:
    """Drain, put in maintenance, bring online, or relabel a server (read it back with
    ``get_server``)."""
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


def delete_server(ctx: ServiceContext, caller: Caller, server_id: str) -> None:
    """Remove a server that holds no reservations (drain it first)."""
    with ctx.db.write() as session:
        row = server_row(session, server_id)
        if row is None:
            raise NotFound.for_object("server", server_id)
        held = reservations_on(session, row.id)
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
