"""The allocation counters: reserve and release with compare-and-set UPDATEs.

Each UPDATE only succeeds when the new total stays within capacity (and, for a GPU,
within 1000 milli and, for the GPU memory a share reserves, within the device's memory).
A zero row count means another decider got there first: the caller raises and rolls the
whole decision back. The CHECK constraints on the tables are the second line of defence.
Statements are built once (they run on the scheduler's hot path) and executed on the
session's connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import BindParameter, Table, and_, bindparam, update
from sqlalchemy.orm import Session

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow

_servers = cast(Table, ServerRow.__table__).c
_gpus = cast(Table, ServerGpuRow.__table__).c
_cpu: BindParameter[int] = bindparam("cpu")
_ram: BindParameter[int] = bindparam("ram")
_disk: BindParameter[int] = bindparam("disk")
_gpu: BindParameter[int] = bindparam("gpu")
_milli: BindParameter[int] = bindparam("milli")
_mem: BindParameter[int] = bindparam("mem")

_ADD_TO_SERVER = (
    update(cast(Table, ServerRow.__table__))
    .where(
        _servers.id == bindparam("b_server_id"),
        _servers.alloc_cpu_milli + _cpu <= _servers.cpu_milli,
        _servers.alloc_ram_mib + _ram <= _servers.ram_mib,
        _servers.alloc_storage_mib + _disk <= _servers.storage_mib,
        _servers.alloc_gpu_milli + _gpu <= _servers.gpu_milli,
    )
    .values(
        alloc_cpu_milli=_servers.alloc_cpu_milli + _cpu,
        alloc_ram_mib=_servers.alloc_ram_mib + _ram,
        alloc_storage_mib=_servers.alloc_storage_mib + _disk,
        alloc_gpu_milli=_servers.alloc_gpu_milli + _gpu,
    )
)
_ADD_TO_ONLINE_SERVER = _ADD_TO_SERVER.where(_servers.status == "online")
_ADD_TO_GPU = (
    update(cast(Table, ServerGpuRow.__table__))
    .where(
        and_(
            _gpus.server_id == bindparam("b_server_id"),
            _gpus.gpu_index == bindparam("b_gpu_index"),
            _gpus.allocated_milli + _milli <= GPU_MILLI,
            _gpus.allocated_memory_mib + _mem <= _gpus.memory_mib,
        )
    )
    .values(
        allocated_milli=_gpus.allocated_milli + _milli,
        allocated_memory_mib=_gpus.allocated_memory_mib + _mem,
    )
)
_TAKE_FROM_SERVER = (
    update(cast(Table, ServerRow.__table__))
    .where(_servers.id == bindparam("b_server_id"))
    .values(
        alloc_cpu_milli=_servers.alloc_cpu_milli - _cpu,
        alloc_ram_mib=_servers.alloc_ram_mib - _ram,
        alloc_storage_mib=_servers.alloc_storage_mib - _disk,
        alloc_gpu_milli=_servers.alloc_gpu_milli - _gpu,
    )
)
_TAKE_FROM_GPU = (
    update(cast(Table, ServerGpuRow.__table__))
    .where(_gpus.server_id == bindparam("b_server_id"), _gpus.gpu_index == bindparam("b_gpu_index"))
    .values(
        allocated_milli=_gpus.allocated_milli - _milli,
        allocated_memory_mib=_gpus.allocated_memory_mib - _mem,
    )
)


class ReservationConflict(Exception):
    """The server no longer has room (or is no longer online): the decision is stale."""


def _amounts(server_id: str, resources: Resources) -> dict[str, Any]:
    return {
        "b_server_id": server_id,
        "cpu": resources.cpu_milli,
        "ram": resources.ram_mib,
        "disk": resources.storage_mib,
        "gpu": resources.gpu_milli,
    }


@dataclass
class ReservationBatch:
    """Reservations to make together: one statement per table, executed for every row
    (``executemany``; psycopg pipelines it into one round trip on PostgreSQL). The rows
    run in order, each checked against what the rows before it took."""

    servers: list[dict[str, Any]] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)
    #: What each server row asks for, to name it when a single one does not fit.
    requests: list[Resources] = field(default_factory=list)

    def in_lock_order(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The rows sorted by server and device. Every batch (reserve or release) locks
        rows in this order, so two batches over the same servers (the scheduler's apply
        and the lifecycle tick on PostgreSQL) wait for each other instead of deadlocking.
        The order does not change the outcome: a batch is all or nothing."""
        servers = sorted(self.servers, key=itemgetter("b_server_id"))
        gpus = sorted(self.gpus, key=itemgetter("b_server_id", "b_gpu_index"))
        return servers, gpus

    def add(
        self, server_id: str, resources: Resources, gpu_allocation: Iterable[tuple[int, int]]
    ) -> None:
        self.servers.append(_amounts(server_id, resources))
        self.requests.append(resources)
        # GPU memory is reserved on every device of the allocation (a share has one).
        memory = resources.gpu_memory_mib
        self.gpus.extend(
            {"b_server_id": server_id, "b_gpu_index": gpu_index, "milli": milli, "mem": memory}
            for gpu_index, milli in gpu_allocation
        )


def reserve_batch(
    session: Session, batch: ReservationBatch, *, require_online: bool = True
) -> None:
    """Make every reservation of ``batch`` or raise :class:`ReservationConflict`; the
    caller rolls back (a savepoint, or its transaction) to undo the rows that succeeded."""
    conn = session.connection()
    statement = _ADD_TO_ONLINE_SERVER if require_online else _ADD_TO_SERVER
    servers, gpus = batch.in_lock_order()
    if servers and conn.execute(statement, servers).rowcount != len(servers):
        if len(servers) == 1:
            server_id, wanted = servers[0]["b_server_id"], batch.requests[0].describe()
            raise ReservationConflict(f"server {server_id} has no room for {wanted}")
        raise ReservationConflict("a server of the batch has no room")
    if gpus and conn.execute(_ADD_TO_GPU, gpus).rowcount != len(gpus):
        owners = {gpu["b_server_id"] for gpu in gpus}
        raise ReservationConflict(
            f"a GPU of server {owners.pop()} is taken (or short of memory)"
            if len(owners) == 1
            else "a GPU is taken (or short of memory)"
        )


def reserve_resources(
    session: Session,
    server_id: str,
    resources: Resources,
    gpu_allocation: Iterable[tuple[int, int]],
    *,
    require_online: bool = True,
) -> None:
    """Add ``resources`` to the server's counters and each GPU's milli (and GPU memory),
    or raise."""
    batch = ReservationBatch()
    batch.add(server_id, resources, gpu_allocation)
    reserve_batch(session, batch, require_online=require_online)


def release_resources(
    session: Session,
    server_id: str,
    resources: Resources,
    gpu_allocation: Iterable[tuple[int, int]],
) -> None:
    """Give back what :func:`reserve_resources` took (the CHECKs keep counters >= 0)."""
    batch = ReservationBatch()
    batch.add(server_id, resources, gpu_allocation)
    release_batch(session, batch)


def release_batch(session: Session, batch: ReservationBatch) -> None:
    """Give back every reservation of ``batch``, one statement per table."""
    conn = session.connection()
    servers, gpus = batch.in_lock_order()
    if servers:
        conn.execute(_TAKE_FROM_SERVER, servers)
    if gpus:
        conn.execute(_TAKE_FROM_GPU, gpus)
