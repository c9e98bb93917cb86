"""Synthetic fleets and workloads over the scheduler's own snapshot types.

Every scenario that drives the pure engine builds its input here, so the engine and the
baselines read exactly the same :class:`ClusterSnapshot` and :class:`PendingWorkload` values.
Everything is seeded: the same arguments give the same fleet.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuAllocation,
    GpuDevice,
    PendingWorkload,
    RunningReplica,
    ServerView,
)

H100 = "NVIDIA H100 80GB HBM3"
CLUSTER = "bench"


@dataclass(frozen=True, slots=True)
class ServerShape:
    """Capacity of one simulated server, in API units."""

    cpu: float = 64
    ram_gb: float = 512
    storage_gb: float = 2048
    gpus: int = 8
    model: str = H100


DEFAULT_SHAPE = ServerShape()


def res(cpu: float = 0, ram_gb: float = 0, gpu: float = 0) -> Resources:
    """Resources from API units (cores, GB, GPUs), exact."""
    return Resources(round(cpu * 1000), round(ram_gb * MIB_PER_GB), 0, round(gpu * GPU_MILLI))


def make_servers(count: int, shape: ServerShape = DEFAULT_SHAPE) -> list[ServerView]:
    """``count`` identical empty servers named ``node-00000``..."""
    capacity = Resources(
        round(shape.cpu * 1000),
        round(shape.ram_gb * MIB_PER_GB),
        round(shape.storage_gb * MIB_PER_GB),
        shape.gpus * GPU_MILLI,
    )
    gpus = tuple(GpuDevice(index=i, model=shape.model) for i in range(shape.gpus))
    return [
        ServerView(
            id=f"srv-{n:05d}",
            name=f"node-{n:05d}",
            cluster_id=CLUSTER,
            status=ServerStatus.ONLINE,
            capacity=capacity,
            allocated=Resources(),
            gpus=gpus,
        )
        for n in range(count)
    ]


def with_running(
    servers: Sequence[ServerView], running: Iterable[RunningReplica]
) -> ClusterSnapshot:
    """A snapshot whose servers carry the usage of ``running``, as the database would."""
    running = tuple(running)
    used: dict[str, Resources] = {}
    milli: dict[str, dict[int, int]] = {}
    for r in running:
        used[r.server_id] = used.get(r.server_id, Resources()) + r.resources
        devices = milli.setdefault(r.server_id, {})
        for index, m in r.gpu_allocation:
            devices[index] = devices.get(index, 0) + m
    out: list[ServerView] = []
    for server in servers:
        if server.id not in used:
            out.append(server)
            continue
        devices = milli[server.id]
        gpus = tuple(
            replace(g, allocated_milli=g.allocated_milli + devices.get(g.index, 0))
            for g in server.gpus
        )
        out.append(replace(server, allocated=server.allocated + used[server.id], gpus=gpus))
    return ClusterSnapshot(servers=tuple(out), running=running)


def random_running(
    servers: Sequence[ServerView], count: int, seed: int, priority: int = 3
) -> list[RunningReplica]:
    """``count`` replicas of a mixed size (CPU-only, a GPU share, 1-4 whole GPUs) placed on
    random servers with room, devices taken lowest index first."""
    rng = random.Random(seed)
    free = {s.id: [s.capacity.cpu_milli, s.capacity.ram_mib] for s in servers}
    devices = {s.id: [0] * len(s.gpus) for s in servers}
    out: list[RunningReplica] = []
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        server = servers[rng.randrange(len(servers))]
        kind = rng.choice(("cpu", "share", "whole1", "whole2", "whole4"))
        cpu, ram = rng.choice((2, 4, 8)), rng.choice((8, 16, 64))
        want = res(cpu, ram)
        alloc: GpuAllocation = ()
        slots = devices[server.id]
        if kind == "share":
            pos = next((p for p, used in enumerate(slots) if used + 500 <= GPU_MILLI), None)
            if pos is None:
                continue
            alloc = ((pos, 500),)
        elif kind.startswith("whole"):
            need = int(kind[-1])
            free_pos = [p for p, used in enumerate(slots) if used == 0][:need]
            if len(free_pos) < need:
                continue
            alloc = tuple((p, GPU_MILLI) for p in free_pos)
        left = free[server.id]
        if want.cpu_milli > left[0] or want.ram_mib > left[1]:
            continue
        left[0] -= want.cpu_milli
        left[1] -= want.ram_mib
        for pos, m in alloc:
            slots[pos] += m
        gpu = sum(m for _, m in alloc)
        out.append(
            RunningReplica(
                workload_id=f"run-{len(out):06d}",
                replica=0,
                server_id=server.id,
                priority=priority,
                preemptible=True,
                resources=Resources(want.cpu_milli, want.ram_mib, 0, gpu),
                gpu_allocation=alloc,
                started_at=0.0,
                name=f"run-{len(out):06d}",
            )
        )
    return out


def pending(
    prefix: str,
    resources: Sequence[Resources],
    *,
    priority: int = 3,
    start: float = 0.0,
    step: float = 0.001,
    gpu_model: str | None = None,
) -> list[PendingWorkload]:
    """One pending workload per entry, submitted ``step`` seconds apart (queue = list order)."""
    return [
        PendingWorkload(
            workload_id=f"{prefix}-{i:06d}",
            priority=priority,
            submitted_at=start + i * step,
            resources=r,
            name=f"{prefix}-{i:06d}",
            gpu_model=gpu_model,
        )
        for i, r in enumerate(resources)
    ]


def gpu_mix(count: int, seed: int) -> list[Resources]:
    """``count`` whole-GPU requests of 1/2/4/8 GPUs (equal shares), 4 cores and 32 GB per GPU."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        gpus = rng.choice((1, 2, 4, 8))
        out.append(res(4 * gpus, 32 * gpus, gpus))
    return out
