"""Rows to domain values: one named function per conversion."""

from __future__ import annotations

from gpuyard.domain.resources import Resources
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def workload_request(row: WorkloadRow) -> Resources:
    """What one replica of the workload asks for."""
    return Resources(
        row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli, row.gpu_memory_mib or 0
    )


def allocation_resources(row: AllocationRow) -> Resources:
    """What one replica's reservation holds (GPU memory: on each of its devices)."""
    return Resources(
        row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli, row.gpu_memory_mib or 0
    )


def allocation_gpus(row: AllocationRow) -> tuple[tuple[int, int], ...]:
    return tuple((int(index), int(milli)) for index, milli in row.gpu_allocation)


def server_capacity(row: ServerRow) -> Resources:
    return Resources(row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli)


def server_allocated(row: ServerRow) -> Resources:
    return Resources(
        row.alloc_cpu_milli, row.alloc_ram_mib, row.alloc_storage_mib, row.alloc_gpu_milli
    )
