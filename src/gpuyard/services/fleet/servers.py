"""Servers: register, list, change status/labels, remove."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.fleet_records import Cluster, Gpu, Server
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.runtimes.base import RegistrationFields, Runtime
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import cluster_of_kind, ensure_server_name_free
from gpuyard.services.fleet.reported_servers import ReportedServerSpec, create_reported_server
from gpuyard.services.fleet.server_status import change_server_status
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.pools.specs import lock_pools_of, retire_pools
from gpuyard.settings import parse_port_range
from gpuyard.store.fleet import (
    NewServer,
    add_server,
    cluster_record,
    cluster_row,
    find_servers,
    remove_server,
    reservations_on,
    server_record,
    server_row,
    server_status_record,
    set_server_labels,
)


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
    """A POST /servers body: capacity declared (simulated) or connection fields (docker).

    The runtime of the cluster's kind decides which of them it takes
    (``Runtime.check_registration``); a new runtime's connection fields join ``connection``.
    """

    name: str
    cluster_id: str
    cpu: float | None = None
    ram_gb: float | None = None
    storage_gb: float = 0
    gpus: list[GpuSpec] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    agent_url: str | None = None
    agent_token: str | None = None
    agent_tls_cert: str | None = None
    host_ports: str | None = None

    @property
    def connection(self) -> dict[str, str | None]:
        """Every connection field the body can give, by name (None: not given)."""
        return {
            "agent_url": self.agent_url,
            "agent_token": self.agent_token,
            "agent_tls_cert": self.agent_tls_cert,
        }

    @property
    def fields(self) -> RegistrationFields:
        return RegistrationFields(
            self.cpu, self.ram_gb, len(self.gpus), self.host_ports, self.connection
        )


def register_server(ctx: ServiceContext, caller: Caller, spec: ServerRegistration) -> Server:
    """Register a server in the shape the runtime of its cluster's kind takes; any other
    shape is a 422 naming the field that does not belong (or is missing)."""
    with ctx.db.read() as session:
        row = cluster_row(session, spec.cluster_id)
        cluster = cluster_record(row) if row is not None else None
    if cluster is None:
        raise InvalidInput.for_field("cluster_id", f"cluster {spec.cluster_id!r} does not exist")
    runtime = ctx.runtimes.get(cluster.kind)
    _refuse_other_kinds_fields(ctx, cluster, runtime, spec.connection)
    if runtime is None:  # kubernetes until issue 17 registers its nodes
        declaring = " or ".join(ctx.runtimes.kinds_where(declares_capacity))
        raise InvalidInput.for_field(
            "cluster_id",
            f"cluster {cluster.name!r} is a {cluster.kind} cluster; only {declaring} servers "
            "can be registered by declaring capacity",
        )
    runtime.check_registration(spec.fields)
    ports = None
    if spec.host_ports:
        try:
            ports = parse_port_range(spec.host_ports)
        except ValueError as exc:
            raise InvalidInput.for_field("host_ports", str(exc)) from exc
    if runtime.reports_inventory:
        connection = {name: spec.connection.get(name) or "" for name in runtime.connection_fields}
        reported = ReportedServerSpec(spec.name, cluster.id, connection, spec.labels, ports)
        return create_reported_server(ctx, caller, reported, runtime)
    assert spec.cpu is not None  # check_registration: a declaring runtime requires both
    assert spec.ram_gb is not None
    simulated = SimulatedServerSpec(
        spec.name, spec.cluster_id, spec.cpu, spec.ram_gb, spec.storage_gb, spec.gpus, spec.labels
    )
    return create_server(ctx, caller, simulated)


def declares_capacity(runtime: Runtime) -> bool:
    """Whether the runtime's servers declare their capacity at registration."""
    return not runtime.reports_inventory


def _refuse_other_kinds_fields(
    ctx: ServiceContext,
    cluster: Cluster,
    runtime: Runtime | None,
    connection: Mapping[str, str | None],
) -> None:
    """422 on a connection field given that the cluster's runtime does not take."""
    own = runtime.connection_fields if runtime else ()
    for name, value in connection.items():
        if value is None or name in own:
            continue
        owner = ctx.runtimes.kind_taking(name)
        owner_runtime = ctx.runtimes.get(owner) if owner else None
        fields = list(owner_runtime.connection_fields) if owner_runtime else [name]
        takes = " and ".join(filter(None, [", ".join(fields[:-1]), fields[-1]]))
        raise InvalidInput.for_field(
            name,
            f"cluster {cluster.name!r} is a {cluster.kind} cluster; {takes} are for "
            f"{owner} clusters",
        )


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
    now = ctx.now()
    with ctx.db.write() as session:
        server = server_status_record(session, server_id)
        if server is None:
            raise NotFound.for_object("server", server_id)
        if status is not None:
            reason = f"set to {status.value} by an administrator"
            change_server_status(session, server, status, reason, AuditActor.of(caller), now)
        set_server_labels(session, server_id, labels, now)
        changed: dict[str, object] = {"name": server.name}
        if status is not None:
            changed["status"] = status.value
        if labels is not None:
            changed["labels"] = dict(labels)
        record_audit(
            session, AuditActor.of(caller), "server.update", "server", server.id, now, changed
        )
    ctx.scheduler_wakeup.notify()


def delete_server(ctx: ServiceContext, caller: Caller, server_id: str) -> None:
    """Remove a server that holds no reservations (drain it first). Its pools go with it
    (the foreign key cascades); their warm containers that are not placed stop first."""
    now = ctx.now()
    with ctx.db.write() as session:
        pools = lock_pools_of(session, server_id=server_id)
        server = server_status_record(session, server_id)
        if server is None:
            raise NotFound.for_object("server", server_id)
        held = reservations_on(session, server.id)
        if held:
            raise Conflict(
                f"server {server.name!r} still holds {held} reservation(s); drain it and stop "
                "its workloads first"
            )
        retire_pools(session, pools, f"server {server.name} deleted with its pool", now)
        record_audit(
            session,
            AuditActor.of(caller),
            "server.delete",
            "server",
            server.id,
            now,
            {"name": server.name},
        )
        remove_server(session, server.id)
