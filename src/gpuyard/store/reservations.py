"""The allocation counters: reserve and release with compare-and-set UPDATEs.

Each UPDATE only succeeds when the new total stays within capacity (and, for a GPU,
within 1000 milli). A zero row count means another decider got there first: the caller
raises and rolls the whole decision back. The CHECK constraints on the tables are the
second line of defence. Statements are built once (they run on the scheduler's hot path)
and executed on the session's connection.
"""

from __future__ import annotations

from collections.abc import Iterable
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
        )
    )
    .values(allocated_milli=_gpus.allocated_milli + _milli)
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
    .values(allocated_milli=_gpus.allocated_milli - _milli)
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


def reserve_resources(
    session: Session,
    server_id: str,
    resources: Resources,
    gpu_allocation: Iterable[tuple[int, int]],
    *,
    require_online: bool = True,
) -> None:
    """Add ``resources`` to the server's counters and each GPU's milli, or raise."""
    conn = session.connection()
    statement = _ADD_TO_ONLINE_SERVER if require_online else _ADD_TO_SERVER
    if conn.execute(statement, _amounts(server_id, resources)).rowcount != 1:
        raise ReservationConflict(f"server {server_id} has no room for {resources.describe()}")
    for gpu_index, milli in gpu_allocation:
        params = {"b_server_id": server_id, "b_gpu_index": gpu_index, "milli": milli}
        if conn.execute(_ADD_TO_GPU, params).rowcount != 1:
            raise ReservationConflict(f"GPU {gpu_index} of server {server_id} is taken")


def release_resources(
    session: Session,
    server_id: str,
    resources: Resources,
    gpu_allocation: Iterable[tuple[int, int]],
) -> None:
    """Give back what :func:`reserve_resources` took (the CHECKs keep counters >= 0)."""
    conn = session.connection()
    conn.execute(_TAKE_FROM_SERVER, _amounts(server_id, resources))
    for gpu_index, milli in gpu_allocation:
        conn.execute(
            _TAKE_FROM_GPU, {"b_server_id": server_id, "b_gpu_index": gpu_index, "milli": milli}
        )
