"""The allocation counters: reserve and release with compare-and-set UPDATEs.

Each UPDATE only succeeds when the new total stays within capacity (and, for a GPU,
within 1000 milli). A zero row count means another decider got there first: the caller
raises and rolls the whole decision back. The CHECK constraints on the tables are the
second line of defence.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, update
from sqlalchemy.orm import Session

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow


class ReservationConflict(Exception):
    """The server no longer has room (or is no longer online): the decision is stale."""


def reserve_resources(
    session: Session,
    server_id: str,
    resources: Resources,
    gpu_allocation: Iterable[tuple[int, int]],
    *,
    require_online: bool = True,
) -> None:
    """Add ``resources`` to the server's counters and each GPU's milli, or raise."""
    s = ServerRow
    conditions = [
        s.id == server_id,
        s.alloc_cpu_milli + resources.cpu_milli <= s.cpu_milli,
        s.alloc_ram_mib + resources.ram_mib <= s.ram_mib,
        s.alloc_storage_mib + resources.storage_mib <= s.storage_mib,
        s.alloc_gpu_milli + resources.gpu_milli <= s.gpu_milli,
    ]
    if require_online:
        conditions.append(s.status == "online")
    result = session.execute(
        update(s)
        .where(and_(*conditions))
        .values(
            alloc_cpu_milli=s.alloc_cpu_milli + resources.cpu_milli,
            alloc_ram_mib=s.alloc_ram_mib + resources.ram_mib,
            alloc_storage_mib=s.alloc_storage_mib + resources.storage_mib,
            alloc_gpu_milli=s.alloc_gpu_milli + resources.gpu_milli,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ReservationConflict(f"server {server_id} has no room for {resources.describe()}")
    for gpu_index, milli in gpu_allocation:
        g = ServerGpuRow
        result = session.execute(
            update(g)
            .where(
                g.server_id == server_id,
                g.gpu_index == gpu_index,
                g.allocated_milli + milli <= GPU_MILLI,
            )
            .values(allocated_milli=g.allocated_milli + milli)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ReservationConflict(f"GPU {gpu_index} of server {server_id} is taken")


def release_resources(
    session: Session,
    server_id: str,
    resources: Resources,
    gpu_allocation: Iterable[tuple[int, int]],
) -> None:
    """Give back what :func:`reserve_resources` took (the CHECKs keep counters >= 0)."""
    s = ServerRow
    session.execute(
        update(s)
        .where(s.id == server_id)
        .values(
            alloc_cpu_milli=s.alloc_cpu_milli - resources.cpu_milli,
            alloc_ram_mib=s.alloc_ram_mib - resources.ram_mib,
            alloc_storage_mib=s.alloc_storage_mib - resources.storage_mib,
            alloc_gpu_milli=s.alloc_gpu_milli - resources.gpu_milli,
        )
        .execution_options(synchronize_session=False)
    )
    for gpu_index, milli in gpu_allocation:
        g = ServerGpuRow
        session.execute(
            update(g)
            .where(g.server_id == server_id, g.gpu_index == gpu_index)
            .values(allocated_milli=g.allocated_milli - milli)
            .execution_options(synchronize_session=False)
        )
