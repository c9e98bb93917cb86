"""Building the replicas a runtime starts (``ReplicaJob``: a runtime's ReplicaSpec with the
records it came from) from what the database recorded: the workload, its allocation, the
server's GPUs (by index -> UUID) and the host ports taken for it.

Used by the starter (first start) and by recovery (recreate a vanished container from the
same record); both call the runtime afterwards, outside the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gpuyard.domain.kube_names import team_namespace
from gpuyard.domain.pools import PoolState, container_labels, container_name
from gpuyard.runtimes.base import ReplicaSpec
from gpuyard.services.loops.item_failures import blames_item
from gpuyard.store import fleet
from gpuyard.store import pools as pool_store
from gpuyard.store import teams as team_store
from gpuyard.store import workloads as workload_store
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


@dataclass(frozen=True, kw_only=True)
class ReplicaJob(ReplicaSpec):
    """One replica to (re)create: the runtime's spec (it is passed to ``start`` as it is)
    and the records it was built from."""

    allocation_id: str
    server_id: str
    #: The cluster kind of the server: its runtime is ``ctx.runtimes.for_kind(kind)``.
    kind: str
    #: The handle recorded for the replica (None until its container was created).
    container_id: str | None


def replica_job(
    workload: WorkloadRow,
    allocation: AllocationRow,
    server_name: str,
    kind: str,
    gpu_uuids: dict[int, str],
    host_ports: dict[int, int],
    pool_type: str | None = None,
    team_name: str | None = None,
) -> ReplicaJob:
    """One replica to start; GPUs by the UUIDs of exactly the reserved indices. A warm
    pool container (``pool_type``: its pool's image type) gets the seed's labels, as its
    row stands now (so a recreated assigned one says so), and name. A runtime with
    namespaces puts it in its team's (``team_name``; none: the runtime's default)."""
    indices = [int(index) for index, _milli in allocation.gpu_allocation]
    labels: dict[str, str] = {}
    name: str | None = None
    if pool_type is not None and workload.pool_state is not None:
        index = int(workload.pool_index or 0)
        state = PoolState(workload.pool_state)
        user_id = workload.owner_id if state is PoolState.ASSIGNED else None
        labels = container_labels(pool_type, index, state, user_id)
        first_port = next(iter(sorted(host_ports.values())), None)
        name = container_name(pool_type, index, first_port, workload.id)
    return ReplicaJob(
        workload_id=workload.id,
        replica=allocation.replica,
        image=workload.image,
        command=list(workload.command) if workload.command is not None else None,
        env=dict(workload.env or {}),
        ports=[int(p) for p in workload.ports or []],
        server_name=server_name,
        cpu_milli=allocation.cpu_milli,
        ram_mib=allocation.ram_mib,
        storage_mib=allocation.storage_mib,
        gpu_indices=indices,
        gpu_uuids=[gpu_uuids[i] for i in indices if i in gpu_uuids],
        gpu_memory_mib=int(allocation.gpu_memory_mib or 0),
        host_ports=host_ports,
        allocation_id=allocation.id,
        server_id=allocation.server_id,
        kind=kind,
        container_id=allocation.container_id,
        labels=labels,
        container_name=name,
        files_path=workload.files_path,
        namespace=team_namespace(team_name),
    )


def load_replica_jobs(
    session: Session,
    allocations: Iterable[AllocationRow],
    unbuildable: list[tuple[AllocationRow, Exception]] | None = None,
) -> list[ReplicaJob]:
    """Jobs for ``allocations`` (with their workloads loaded), in a few queries.

    With ``unbuildable``, an allocation whose job cannot be built from what is stored
    (its workload's row cannot be read, its env is not an object...) goes there with the
    error, and the others are built; without it, the error is raised."""
    allocations = list(allocations)
    server_ids = {a.server_id for a in allocations}
    names_and_kinds = fleet.server_names_and_kinds(session, server_ids)
    uuids = fleet.gpu_uuids(session, server_ids)
    ports = workload_store.host_ports(session, [a.id for a in allocations])
    types = pool_store.pool_types(session, {a.workload.pool_id for a in allocations} - {None})
    teams = team_store.team_names(session, {a.workload.team_id or "" for a in allocations} - {""})
    jobs = []
    for a in allocations:
        name, kind = names_and_kinds[a.server_id]
        try:
            job = replica_job(
                a.workload,
                a,
                name,
                kind,
                uuids.get(a.server_id, {}),
                ports.get(a.id, {}),
                types.get(a.workload.pool_id or ""),
                teams.get(a.workload.team_id or ""),
            )
        except Exception as exc:
            if unbuildable is None or not blames_item(exc):
                raise
            unbuildable.append((a, exc))
            continue
        jobs.append(job)
    return jobs


@dataclass(frozen=True)
class RuntimeServer:
    """A server as a runtime knows it: by name, run by the runtime of its cluster kind."""

    name: str
    kind: str


def servers_of_kinds(
    session: Session, kinds: Iterable[str], statuses: Iterable[str]
) -> dict[str, RuntimeServer]:
    """{id: server} of the servers in ``statuses`` whose cluster is of one of ``kinds``
    (from ``ctx.runtimes.kinds_where(...)``)."""
    return {
        server_id: RuntimeServer(name, kind)
        for server_id, (name, kind) in fleet.servers_of_kinds(session, kinds, statuses).items()
    }
