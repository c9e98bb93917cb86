"""The fleet repository: clusters, and servers with their GPUs, mapped to read models
(domain/fleet_records.py).

Reservation counters are not here (store/reservations.py), nor server status transitions.
Functions take the caller's Session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from gpuyard.domain.fleet_records import Cluster, Gpu, Server
from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.store.base import as_utc, as_utc_or_none
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def cluster_record(row: ClusterRow) -> Cluster:
    """The read model of a cluster row."""
    return Cluster(
        id=row.id,
        name=row.name,
        kind=row.kind,
        has_kubeconfig=row.kubeconfig_enc is not None,
        created_at=as_utc(row.created_at),
    )


def server_record(row: ServerRow) -> Server:
    """The read model of a loaded server row (its GPUs are loaded with it)."""
    return Server(
        id=row.id,
        name=row.name,
        cluster_id=row.cluster_id,
        status=row.status,
        agent_url=row.agent_url,
        last_seen_at=as_utc_or_none(row.last_seen_at),
        labels=dict(row.labels or {}),
        cpu_milli=row.cpu_milli,
        ram_mib=row.ram_mib,
        storage_mib=row.storage_mib,
        gpu_milli=row.gpu_milli,
        alloc_cpu_milli=row.alloc_cpu_milli,
        alloc_ram_mib=row.alloc_ram_mib,
        alloc_storage_mib=row.alloc_storage_mib,
        alloc_gpu_milli=row.alloc_gpu_milli,
        gpus=tuple(
            Gpu(
                index=g.gpu_index,
                uuid=g.uuid,
                model=g.model,
                memory_mib=g.memory_mib,
                allocated_milli=g.allocated_milli,
                utilization_pct=g.utilization_pct,
                allocated_memory_mib=g.allocated_memory_mib,
            )
            for g in row.gpus
        ),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def cluster_row(session: Session, cluster_id: str) -> ClusterRow | None:
    """The cluster's row, or None when there is none."""
    return session.get(ClusterRow, cluster_id)


def lock_cluster_row(session: Session, cluster_id: str, *, exclusive: bool) -> ClusterRow | None:
    """The cluster's row, locked until the transaction ends, or None when there is none.

    On PostgreSQL ``exclusive`` takes FOR UPDATE (to rename or delete it), else FOR KEY
    SHARE (to add a server or workload naming it): a delete then waits for the writes
    naming the cluster that began before it, and those after it wait for the delete and
    find the cluster gone, instead of a foreign-key violation at commit. SQLite needs no
    row lock: BEGIN IMMEDIATE already runs one writer at a time."""
    query = select(ClusterRow).where(ClusterRow.id == cluster_id)
    if exclusive:
        query = query.with_for_update()
    else:
        query = query.with_for_update(read=True, key_share=True)
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def cluster_exists(session: Session, cluster_id: str) -> bool:
    """Whether there is a cluster ``cluster_id``."""
    return session.get(ClusterRow, cluster_id) is not None


def cluster_kind(session: Session, cluster_id: str) -> str | None:
    """The cluster's kind, or None when there is no such cluster."""
    cluster = session.get(ClusterRow, cluster_id)
    return cluster.kind if cluster else None


def largest_gpu_memory_by_model(session: Session, cluster_id: str | None) -> dict[str, int]:
    """Per GPU model, the most memory (MiB) one device of it has, on any server (of
    ``cluster_id`` when given)."""
    query = select(ServerGpuRow.model, func.max(ServerGpuRow.memory_mib)).group_by(
        ServerGpuRow.model
    )
    if cluster_id is not None:
        query = query.join(ServerRow, ServerRow.id == ServerGpuRow.server_id).where(
            ServerRow.cluster_id == cluster_id
        )
    return {model: int(memory or 0) for model, memory in session.execute(query).all()}


def cluster_name_taken(session: Session, name: str) -> bool:
    """Whether a cluster is named ``name``."""
    return session.scalar(select(ClusterRow.id).where(ClusterRow.name == name)) is not None


def server_name_taken(session: Session, name: str) -> bool:
    """Whether a server is named ``name``."""
    return session.scalar(select(ServerRow.id).where(ServerRow.name == name)) is not None


def add_cluster(
    session: Session, name: str, kind: str, kubeconfig_enc: str | None, now: datetime
) -> Cluster:
    """Insert a cluster (``kubeconfig_enc``: already encrypted)."""
    row = ClusterRow(name=name, kind=kind, kubeconfig_enc=kubeconfig_enc, created_at=now)
    session.add(row)
    session.flush()
    return cluster_record(row)


def find_clusters(session: Session, limit: int, offset: int) -> tuple[list[Cluster], int]:
    """Clusters, newest first, with the total count."""
    count = session.scalar(select(func.count()).select_from(ClusterRow)) or 0
    rows = session.scalars(
        select(ClusterRow).order_by(ClusterRow.created_at.desc()).limit(limit).offset(offset)
    ).all()
    return [cluster_record(r) for r in rows], count


def server_row(session: Session, server_id: str) -> ServerRow | None:
    """The server's row, to change it in this session (None when there is none)."""
    return session.get(ServerRow, server_id)


def fresh_server_row(session: Session, server_id: str) -> ServerRow | None:
    """The server's row and GPUs re-read from the database, replacing what this session
    holds (its counters may have moved since they were loaded), or None."""
    server = session.get(ServerRow, server_id, populate_existing=True)
    if server is None:
        return None
    session.refresh(server, ["gpus"])
    for gpu in server.gpus:
        session.refresh(gpu)
    return server


@dataclass(frozen=True)
class NewServer:
    """What a registration says about a server besides its capacity and GPUs."""

    name: str
    cluster_id: str
    status: str
    labels: dict[str, str]
    #: Where its runtime reaches it (docker: the agent's URL), shown to administrators.
    address: str | None = None
    #: The secret its runtime reaches it with (docker: the agent's token), encrypted.
    secret_enc: str | None = None
    #: Its own range of host ports for published container ports, when it has one.
    host_ports: tuple[int, int] | None = None
    #: The certificate its runtime trusts for it (docker: the agent's, PEM), if pinned.
    trust: str | None = None
    #: Whether it answered at registration (a server that reports its inventory).
    seen: bool = False


def add_server(
    session: Session, server: NewServer, capacity: Resources, gpus: Sequence[Gpu], now: datetime
) -> Server:
    """Insert a server with its capacity and GPUs (nothing reserved yet)."""
    row = ServerRow(
        name=server.name,
        cluster_id=server.cluster_id,
        status=server.status,
        labels=dict(server.labels),
        agent_url=server.address,
        agent_token_enc=server.secret_enc,
        agent_tls_cert=server.trust,
        host_port_min=server.host_ports[0] if server.host_ports else None,
        host_port_max=server.host_ports[1] if server.host_ports else None,
        last_seen_at=now if server.seen else None,
        cpu_milli=capacity.cpu_milli,
        ram_mib=capacity.ram_mib,
        storage_mib=capacity.storage_mib,
        gpu_milli=capacity.gpu_milli,
        created_at=now,
        updated_at=now,
        gpus=[
            ServerGpuRow(
                gpu_index=g.index,
                uuid=g.uuid,
                model=g.model,
                memory_mib=g.memory_mib,
                allocated_milli=g.allocated_milli,
                utilization_pct=g.utilization_pct,
            )
            for g in gpus
        ],
    )
    session.add(row)
    session.flush()
    return server_record(row)


def find_servers(
    session: Session, cluster_id: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[Server], int]:
    """Servers, by name, with the total count; ``None`` filters match any."""
    query = select(ServerRow)
    if cluster_id:
        query = query.where(ServerRow.cluster_id == cluster_id)
    if status:
        query = query.where(ServerRow.status == status)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ServerRow.name).limit(limit).offset(offset)).all()
    return [server_record(r) for r in rows], count


def reservations_on(session: Session, server_id: str) -> int:
    """How many replica reservations the server holds."""
    query = select(func.count()).select_from(AllocationRow)
    return session.scalar(query.where(AllocationRow.server_id == server_id)) or 0


@dataclass(frozen=True)
class ServerAddress:
    """A server's name, its cluster's kind and where its runtime reaches it."""

    server_id: str
    name: str
    kind: str
    address: str | None


def server_addresses(session: Session, server_ids: Iterable[str]) -> list[ServerAddress]:
    """Name, kind and address of each server in ``server_ids``, in one query."""
    query = (
        select(ServerRow.id, ServerRow.name, ClusterRow.kind, ServerRow.agent_url)
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(ServerRow.id.in_(list(server_ids)))
    )
    return [ServerAddress(*row) for row in session.execute(query)]


def server_names_and_kinds(
    session: Session, server_ids: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """{server_id: (name, cluster kind)} of ``server_ids``, in one query."""
    query = (
        select(ServerRow.id, ServerRow.name, ClusterRow.kind)
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(ServerRow.id.in_(list(server_ids)))
    )
    return {server_id: (name, kind) for server_id, name, kind in session.execute(query)}


def servers_of_kinds(
    session: Session, kinds: Iterable[str], statuses: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """{server_id: (name, cluster kind)} of the servers in ``statuses`` whose cluster is of
    one of ``kinds``."""
    kinds = list(kinds)
    if not kinds:
        return {}
    query = (
        select(ServerRow.id, ServerRow.name, ClusterRow.kind)
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(ClusterRow.kind.in_(kinds), ServerRow.status.in_(list(statuses)))
    )
    return {server_id: (name, kind) for server_id, name, kind in session.execute(query)}


def gpu_uuids(session: Session, server_ids: Iterable[str]) -> dict[str, dict[int, str]]:
    """{server_id: {gpu index: uuid}} of ``server_ids`` (a server without GPUs: absent)."""
    g = ServerGpuRow
    uuids: dict[str, dict[int, str]] = defaultdict(dict)
    query = select(g.server_id, g.gpu_index, g.uuid).where(g.server_id.in_(list(server_ids)))
    for server_id, index, uuid in session.execute(query):
        uuids[server_id][index] = uuid
    return dict(uuids)


def set_gpu_utilization(
    session: Session, server_id: str, gpu_index: int, pct: float | None
) -> None:
    """Record the utilization the server's agent reported for one GPU."""
    g = ServerGpuRow
    session.execute(
        update(g)
        .where(g.server_id == server_id, g.gpu_index == gpu_index)
        .values(utilization_pct=pct)
    )


def agent_credentials(
    session: Session, server_name: str
) -> tuple[str | None, str | None, str | None]:
    """(agent_url, agent_token_enc, agent_tls_cert) of the server named ``server_name``;
    all None when there is no such server."""
    s = ServerRow
    row = session.execute(
        select(s.agent_url, s.agent_token_enc, s.agent_tls_cert).where(s.name == server_name)
    ).first()
    return (None, None, None) if row is None else (row[0], row[1], row[2])


def server_cluster_id(session: Session, server_name: str) -> str | None:
    """The cluster id of the server named ``server_name``, or None."""
    return session.scalar(select(ServerRow.cluster_id).where(ServerRow.name == server_name))


def server_names(session: Session, server_ids: Iterable[str]) -> dict[str, str]:
    """{server_id: name} of ``server_ids``, in one query."""
    query = select(ServerRow.id, ServerRow.name).where(ServerRow.id.in_(list(server_ids)))
    return {server_id: name for server_id, name in session.execute(query)}


@dataclass(frozen=True)
class ServerStatusRecord:
    """What status changes and the health loop read of a server, fresh from the database."""

    id: str
    name: str
    status: str
    missed_probes: int


def server_status_record(session: Session, server_id: str) -> ServerStatusRecord | None:
    """The server's status and missed probes as the database has them now, or None."""
    s = ServerRow
    row = session.execute(
        select(s.id, s.name, s.status, s.missed_probes).where(s.id == server_id)
    ).first()
    return ServerStatusRecord(*row) if row is not None else None


def set_server_status(session: Session, server_id: str, status: str) -> None:
    """Write the server's status (``services.fleet.server_status`` checks the change)."""
    session.execute(update(ServerRow).where(ServerRow.id == server_id).values(status=status))


def record_probe_answered(session: Session, server_id: str, now: datetime) -> None:
    """The server answered its health probe: no misses, seen ``now``."""
    session.execute(
        update(ServerRow).where(ServerRow.id == server_id).values(missed_probes=0, last_seen_at=now)
    )


def record_probe_missed(session: Session, server: ServerStatusRecord) -> int:
    """One more missed probe for ``server`` (read in this transaction); the new count."""
    missed = server.missed_probes + 1
    session.execute(update(ServerRow).where(ServerRow.id == server.id).values(missed_probes=missed))
    return missed


def set_server_labels(
    session: Session, server_id: str, labels: dict[str, str] | None, now: datetime
) -> None:
    """Replace the server's labels (None: keep them) and mark it changed ``now``."""
    values: dict[str, object] = {"updated_at": now}
    if labels is not None:
        values["labels"] = dict(labels)
    session.execute(update(ServerRow).where(ServerRow.id == server_id).values(**values))


def remove_server(session: Session, server_id: str) -> None:
    """Delete the server and its GPUs (it holds no reservations: the caller checked)."""
    row = session.get(ServerRow, server_id)
    if row is not None:
        session.delete(row)


def cluster_named(session: Session, name: str) -> Cluster | None:
    """The cluster named ``name``, or None."""
    row = session.scalar(select(ClusterRow).where(ClusterRow.name == name))
    return cluster_record(row) if row is not None else None


def server_id_named(session: Session, name: str) -> str | None:
    """The id of the server named ``name``, or None."""
    return session.scalar(select(ServerRow.id).where(ServerRow.name == name))


def repoint_server(session: Session, server_id: str, address: str, secret_enc: str) -> None:
    """Record where the server is reached now (a new agent), its probes' misses forgiven."""
    session.execute(
        update(ServerRow)
        .where(ServerRow.id == server_id)
        .values(agent_url=address, agent_token_enc=secret_enc, missed_probes=0)
    )


def server_row_named(session: Session, name: str) -> ServerRow | None:
    """The row of the server named ``name``, to change it in this session."""
    return session.scalar(select(ServerRow).where(ServerRow.name == name))


# --- removing or renaming a cluster --------------------------------------------------------


def server_names_in_cluster(session: Session, cluster_id: str, limit: int) -> tuple[list[str], int]:
    """Up to ``limit`` names of the cluster's servers (by name), and how many there are."""
    in_cluster = ServerRow.cluster_id == cluster_id
    count = session.scalar(select(func.count()).select_from(ServerRow).where(in_cluster)) or 0
    names = session.scalars(
        select(ServerRow.name).where(in_cluster).order_by(ServerRow.name).limit(limit)
    ).all()
    return list(names), count


def workloads_naming_cluster(session: Session, cluster_id: str, statuses: Collection[str]) -> int:
    """How many workloads in ``statuses`` asked for ``cluster_id``."""
    query = select(func.count()).select_from(WorkloadRow)
    return (
        session.scalar(
            query.where(WorkloadRow.cluster_id == cluster_id, WorkloadRow.status.in_(statuses))
        )
        or 0
    )


def detach_cluster(session: Session, cluster_id: str, statuses: Collection[str]) -> int:
    """Forget ``cluster_id`` on the workloads in ``statuses`` that asked for it (finished
    ones, so the cluster can go); returns how many."""
    changed = session.execute(
        update(WorkloadRow)
        .where(WorkloadRow.cluster_id == cluster_id, WorkloadRow.status.in_(statuses))
        .values(cluster_id=None)
        .execution_options(synchronize_session=False)
    )
    return int(changed.rowcount)  # type: ignore[attr-defined]


def delete_cluster_row(session: Session, cluster_id: str) -> None:
    """Delete the cluster (it must hold no servers and no workload may name it)."""
    row = session.get_one(ClusterRow, cluster_id)
    session.delete(row)


# --- servers kept from a runtime's inventory (kubernetes nodes) ---------------------------


def cluster_ids(session: Session) -> list[str]:
    """The ids of every cluster, in id order (the order schedulers take their leases in)."""
    return list(session.scalars(select(ClusterRow.id).order_by(ClusterRow.id)).all())


def cluster_ids_of_kind(session: Session, kind: str) -> list[str]:
    """The ids of the clusters of ``kind``, oldest first."""
    query = select(ClusterRow.id).where(ClusterRow.kind == kind)
    return list(session.scalars(query.order_by(ClusterRow.created_at, ClusterRow.id)).all())


def servers_in_cluster(session: Session, cluster_id: str) -> dict[str, ServerStatusRecord]:
    """{name: status record} of every server of the cluster."""
    s = ServerRow
    rows = session.execute(
        select(s.id, s.name, s.status, s.missed_probes).where(s.cluster_id == cluster_id)
    ).all()
    return {row.name: ServerStatusRecord(*row) for row in rows}


def set_server_capacity(
    session: Session, server_id: str, capacity: Resources, gpus: Sequence[Gpu]
) -> bool:
    """Bring the server's capacity and GPUs to what its runtime reports; False when they
    already were. Never below what is reserved there (the database's CHECKs): a capacity
    that shrank under reservations stays at them until they end, in the same UPDATE (so
    a reservation committed meanwhile is counted). A GPU gone from the report is dropped
    unless something is reserved on it; a new one is added."""
    row = session.get(ServerRow, server_id, populate_existing=True)
    if row is None:
        return False
    session.refresh(row, ["gpus"])
    by_index = {g.gpu_index: g for g in row.gpus}
    reported = {g.index: g for g in gpus}
    changed = False
    for index, gpu in reported.items():
        old = by_index.get(index)
        if old is None:
            row.gpus.append(
                ServerGpuRow(
                    gpu_index=index,
                    uuid=gpu.uuid,
                    model=gpu.model,
                    memory_mib=gpu.memory_mib,
                    allocated_milli=0,
                )
            )
            changed = True
        elif (old.model, old.memory_mib) != (gpu.model, gpu.memory_mib):
            old.model = gpu.model
            # Never below the memory shares hold there now (the CHECK), read in the
            # UPDATE itself so a reservation committed meanwhile is counted.
            reserved = ServerGpuRow.allocated_memory_mib
            old.memory_mib = case((reserved > gpu.memory_mib, reserved), else_=gpu.memory_mib)
            changed = True
    for index, old in by_index.items():
        if index not in reported and old.allocated_milli == 0:
            row.gpus.remove(old)
            changed = True
    session.flush()
    gpu_milli = GPU_MILLI * len(row.gpus)  # the devices it has, one reserved ones kept
    wanted = (capacity.cpu_milli, capacity.ram_mib, capacity.storage_mib, gpu_milli)
    if wanted == (row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli) and not changed:
        return False

    def at_least_reserved(value: int, reserved: Any) -> Any:
        return case((reserved > value, reserved), else_=value)

    session.execute(
        update(ServerRow)
        .where(ServerRow.id == server_id)
        .values(
            cpu_milli=at_least_reserved(capacity.cpu_milli, ServerRow.alloc_cpu_milli),
            ram_mib=at_least_reserved(capacity.ram_mib, ServerRow.alloc_ram_mib),
            storage_mib=at_least_reserved(capacity.storage_mib, ServerRow.alloc_storage_mib),
            gpu_milli=at_least_reserved(gpu_milli, ServerRow.alloc_gpu_milli),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(row)
    return True
