"""Small random preemption instances and their brute-force optimum (S3's minimality check).

The same idea as tests/scheduler/test_preemption_minimality.py: on 1-4 servers packed device
by device with up to 8 replicas each, try every subset of evictable replicas on every server
and keep the best by DESIGN.md's order (lowest highest-victim priority, then fewest victims,
then least evicted GPU, then youngest). The engine's choice is minimal when its victims have
the same highest priority and the same count as the optimum.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from itertools import combinations

from bench.fleet import ServerShape, make_servers, res, with_running
from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuAllocation,
    PendingWorkload,
    RunningReplica,
    ServerView,
)


@dataclass(frozen=True)
class Instance:
    snapshot: ClusterSnapshot
    preemptor: PendingWorkload


def random_instance(rng: random.Random) -> Instance:
    servers: list[ServerView] = []
    running: list[RunningReplica] = []
    for s in range(rng.randint(1, 4)):
        gpus = rng.choice((2, 4, 8))
        (server,) = make_servers(1, ServerShape(cpu=32, ram_gb=128, gpus=gpus))
        server = _renamed(server, f"s{s}")
        servers.append(server)
        first = len(running)
        device = 0
        while device < gpus and len(running) - first < 8:
            kind = rng.choice(["whole1", "whole2", "shares", "shares"] * 3 + ["free"])
            if kind == "whole2" and device + 1 < gpus:
                _add(rng, running, server, ((device, GPU_MILLI), (device + 1, GPU_MILLI)))
                device += 2
                continue
            if kind == "shares" and len(running) - first < 7:
                share = rng.choice((200, 300, 500))
                _add(rng, running, server, ((device, share),))
                second = rng.choice((GPU_MILLI - share, GPU_MILLI - share, 100))
                _add(rng, running, server, ((device, second),))
            elif kind != "free":
                _add(rng, running, server, ((device, GPU_MILLI),))
            device += 1
    gpu = rng.choice((1, 2, 2, 3, 3, 4, 0.5, 0.8))
    preemptor = PendingWorkload(
        workload_id="preemptor",
        priority=rng.randint(2, 5),
        submitted_at=0.0,
        resources=res(rng.randint(1, 4), rng.randint(1, 16), gpu),
    )
    return Instance(with_running(servers, running), preemptor)


def _renamed(server: ServerView, name: str) -> ServerView:
    return replace(server, id=name, name=name)


def _add(
    rng: random.Random, running: list[RunningReplica], server: ServerView, alloc: GpuAllocation
) -> None:
    gpu = sum(m for _, m in alloc)
    running.append(
        RunningReplica(
            workload_id=f"r{len(running)}",
            replica=0,
            server_id=server.id,
            priority=rng.randint(1, 5),
            preemptible=rng.random() < 0.75,
            resources=Resources(rng.randint(1, 2) * 1000, rng.randint(1, 8) * 1024, 0, gpu),
            gpu_allocation=alloc,
            started_at=rng.uniform(0, 1000),
        )
    )


def _fits(server: ServerView, staying: list[RunningReplica], want: Resources) -> bool:
    used = Resources()
    devices = {g.index: 0 for g in server.gpus}
    for r in staying:
        used = used + r.resources
        for index, milli in r.gpu_allocation:
            devices[index] += milli
    if not (used + want).fits_in(server.capacity):
        return False
    if want.gpu_milli >= GPU_MILLI:
        return sum(1 for a in devices.values() if a == 0) >= want.gpu_milli // GPU_MILLI
    if want.gpu_milli > 0:
        return any(a + want.gpu_milli <= GPU_MILLI for a in devices.values())
    return True


def optimum(instance: Instance) -> tuple[int, int] | None:
    """(highest victim priority, victim count) of the best choice; None when nothing fits.
    (0, 0) means it fits somewhere without evicting anything."""
    w = instance.preemptor
    best: tuple[int, int] | None = None
    for server in instance.snapshot.servers:
        mine = [r for r in instance.snapshot.running if r.server_id == server.id]
        candidates = [r for r in mine if r.preemptible and r.priority < w.priority]
        for size in range(len(candidates) + 1):
            found: tuple[int, int] | None = None
            for subset in combinations(candidates, size):
                if _fits(server, [r for r in mine if r not in subset], w.resources):
                    key = (max((r.priority for r in subset), default=0), size)
                    found = key if found is None or key < found else found
            if found is not None:
                best = found if best is None or found < best else best
                break
    return best
