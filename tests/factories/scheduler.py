"""Builders for scheduler tests: servers, running replicas, pending workloads, snapshots.

Short on purpose, like kube's ``MakePod().Req(..).Obj()``: every argument has a default and
resources are given in API units (cores, GB, GPUs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.decisions import CycleResult, Pending
from gpuyard.scheduler.request import Request, build_request
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuAllocation,
    GpuDevice,
    PendingWorkload,
    RunningReplica,
    ServerView,
    TeamQuota,
)
from gpuyard.scheduler.state import CycleState

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"


def res(cpu: float = 1, ram_gb: float = 1, storage_gb: float = 0, gpu: float = 0) -> Resources:
    """Resources in API units, converted exactly."""
    return Resources(
        round(cpu * 1000), round(ram_gb * 1024), round(storage_gb * 1024), round(gpu * 1000)
    )


def make_server(
    server_id: str = "s1",
    *,
    gpus: int = 0,
    model: str = H100,
    models: Sequence[str] | None = None,
    gpu_used: Sequence[int] = (),
    cpu: float = 64,
    ram_gb: float = 512,
    storage_gb: float = 1000,
    used: Resources | None = None,
    status: ServerStatus | str = ServerStatus.ONLINE,
    cluster: str = "c1",
    labels: Mapping[str, str] | None = None,
    name: str | None = None,
    memory_gb: int = 80,
) -> ServerView:
    """A server with ``gpus`` devices (or one per entry of ``models``).

    ``gpu_used`` gives each device's allocated milli; ``used`` the other allocations. The
    GPU part of ``allocated`` is the sum of ``gpu_used``.
    """
    device_models = list(models) if models is not None else [model] * gpus
    milli = list(gpu_used) + [0] * (len(device_models) - len(gpu_used))
    devices = tuple(
        GpuDevice(index=i, model=m, memory_mib=memory_gb * 1024, allocated_milli=milli[i])
        for i, m in enumerate(device_models)
    )
    base = used or Resources()
    return ServerView(
        id=server_id,
        name=name or server_id,
        cluster_id=cluster,
        status=ServerStatus(status),
        capacity=res(cpu, ram_gb, storage_gb, len(devices)),
        allocated=Resources(base.cpu_milli, base.ram_mib, base.storage_mib, sum(milli)),
        gpus=devices,
        labels=dict(labels or {}),
    )


def make_running(
    workload_id: str,
    server_id: str = "s1",
    *,
    gpus: Sequence[int] = (),
    share: float = 0,
    cpu: float = 1,
    ram_gb: float = 1,
    priority: int = 3,
    preemptible: bool = True,
    started_at: float | None = 0.0,
    replica: int = 0,
    team: str | None = None,
    model: str | None = None,
) -> RunningReplica:
    """A placed replica: whole devices ``gpus`` or a ``share`` of the single device gpus[0]
    (``model``: the model set it asked for)."""
    alloc: GpuAllocation
    if share:
        alloc = ((gpus[0] if gpus else 0, round(share * 1000)),)
        gpu = share
    else:
        alloc = tuple((i, 1000) for i in sorted(gpus))
        gpu = len(gpus)
    return RunningReplica(
        workload_id=workload_id,
        replica=replica,
        server_id=server_id,
        priority=priority,
        preemptible=preemptible,
        resources=res(cpu, ram_gb, 0, gpu),
        gpu_allocation=alloc,
        started_at=started_at,
        team_id=team,
        name=workload_id,
        gpu_model=model,
    )


def make_pending(
    workload_id: str,
    *,
    gpu: float = 0,
    cpu: float = 1,
    ram_gb: float = 1,
    storage_gb: float = 0,
    priority: int = 3,
    submitted_at: float = 0.0,
    pending_since: float | None = None,
    model: str | None = None,
    cluster: str | None = None,
    selector: Mapping[str, str] | None = None,
    team: str | None = None,
    replicas: int = 1,
    first_replica: int = 0,
    gang: bool = False,
    backoff_until: float | None = None,
) -> PendingWorkload:
    return PendingWorkload(
        workload_id=workload_id,
        priority=priority,
        submitted_at=submitted_at,
        resources=res(cpu, ram_gb, storage_gb, gpu),
        name=workload_id,
        pending_since=pending_since,
        gpu_model=model,
        cluster_id=cluster,
        node_selector=dict(selector or {}),
        team_id=team,
        replicas_missing=replicas,
        first_missing_replica=first_replica,
        gang=gang,
        backoff_until=backoff_until,
    )


def make_quota(
    team: str,
    *,
    used: Resources | None = None,
    cpu: float | None = None,
    ram_gb: float | None = None,
    gpu: float | None = None,
) -> TeamQuota:
    return TeamQuota(
        team_id=team,
        used=used or Resources(),
        cpu_milli=None if cpu is None else round(cpu * 1000),
        ram_mib=None if ram_gb is None else round(ram_gb * 1024),
        gpu_milli=None if gpu is None else round(gpu * 1000),
    )


def make_snapshot(
    servers: Iterable[ServerView],
    running: Iterable[RunningReplica] = (),
    quotas: Iterable[TeamQuota] = (),
) -> ClusterSnapshot:
    """A snapshot whose servers also carry the usage of ``running`` (as the DB would)."""
    running = tuple(running)
    out: list[ServerView] = []
    for server in servers:
        mine = [r for r in running if r.server_id == server.id]
        total = server.allocated
        milli = {g.index: g.allocated_milli for g in server.gpus}
        memory = {g.index: g.allocated_memory_mib for g in server.gpus}
        for r in mine:
            total = total + r.resources
            for index, m in r.gpu_allocation:
                milli[index] += m
                memory[index] += r.resources.gpu_memory_mib
        gpus = tuple(
            replace(g, allocated_milli=milli[g.index], allocated_memory_mib=memory[g.index])
            for g in server.gpus
        )
        out.append(replace(server, allocated=total, gpus=gpus))
    return ClusterSnapshot(
        servers=tuple(out), running=running, quotas={q.team_id: q for q in quotas}
    )


def placed_on(result: CycleResult, workload_id: str) -> list[tuple[str, GpuAllocation]]:
    """(server id, gpu allocation) of every replica admitted for ``workload_id``."""
    return [
        (a.server_id, a.gpu_allocation)
        for admission in result.admitted
        if admission.workload_id == workload_id
        for a in admission.assignments
    ]


def pending_of(result: CycleResult, workload_id: str) -> Pending | None:
    """The Pending decision for ``workload_id`` (None if it got none)."""
    return next((p for p in result.pending if p.workload_id == workload_id), None)


def make_cycle(
    servers: Iterable[ServerView],
    running: Iterable[RunningReplica] = (),
    quotas: Iterable[TeamQuota] = (),
    now: float = 0.0,
) -> CycleState:
    """A cycle's working state over a snapshot built by :func:`make_snapshot`."""
    return CycleState(make_snapshot(servers, running, quotas), now)


def make_request(workload: PendingWorkload, queue_pos: int = 0) -> Request:
    return build_request(workload, queue_pos)
