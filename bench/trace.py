"""The Alibaba "openb" GPU trace (bench/data/alibaba-openb/README.md) as snapshot types.

Nodes become :class:`ServerView` values (one GPU model per node); pods become
:class:`PendingWorkload` values in creation order. A pod asks ``num_gpu`` whole GPUs, or a
share of one GPU when ``num_gpu`` is 1 and ``gpu_milli`` < 1000 (arbitrary milli such as 460:
the pure engine accepts any share; only the API restricts shares to tenths). ``gpu_spec``
names the GPU models a pod may use ('|'-separated); it becomes ``gpu_model`` as written, which
the engine reads the same way (any of the models will do; counted in
:attr:`Trace.multi_model_pods`). The default trace pins no pod to a model, so
:func:`constrained_trace` builds model-constrained variants of it (as the FGD artifact's
``gpuspec`` traces do): a seeded share of the GPU pods pinned to one model each.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.snapshot import GpuDevice, PendingWorkload, ServerView

DATA = Path(__file__).parent / "data" / "alibaba-openb"
NODES_CSV = DATA / "openb_node_list_gpu_node.csv"
PODS_CSV = DATA / "openb_pod_list_default.csv"


@dataclass(frozen=True, slots=True)
class TracePod:
    name: str
    resources: Resources
    gpu_model: str | None
    created: int


@dataclass(frozen=True)
class Trace:
    servers: tuple[ServerView, ...]
    pods: tuple[TracePod, ...]  # creation order
    multi_model_pods: int

    @property
    def gpu_capacity_milli(self) -> int:
        return sum(s.capacity.gpu_milli for s in self.servers)


def load_trace(node_stride: int = 1) -> Trace:
    """The trace; ``node_stride`` > 1 keeps every n-th node (a smaller cluster, same mix)."""
    servers = []
    with NODES_CSV.open(newline="") as f:
        for n, row in enumerate(csv.DictReader(f)):
            if n % node_stride:
                continue
            gpus = int(row["gpu"])
            servers.append(
                ServerView(
                    id=row["sn"],
                    name=row["sn"],
                    cluster_id="openb",
                    status=ServerStatus.ONLINE,
                    capacity=Resources(
                        int(row["cpu_milli"]), int(row["memory_mib"]), 0, gpus * GPU_MILLI
                    ),
                    allocated=Resources(),
                    gpus=tuple(GpuDevice(index=i, model=row["model"]) for i in range(gpus)),
                )
            )
    pods = []
    multi = 0
    with PODS_CSV.open(newline="") as f:
        for row in csv.DictReader(f):
            count, milli = int(row["num_gpu"]), int(row["gpu_milli"])
            gpu = milli if count == 1 else count * GPU_MILLI
            specs = [s for s in row["gpu_spec"].split("|") if s]
            multi += len(specs) > 1
            pods.append(
                TracePod(
                    name=row["name"],
                    resources=Resources(int(row["cpu_milli"]), int(row["memory_mib"]), 0, gpu),
                    gpu_model="|".join(specs) if specs else None,
                    created=int(row["creation_time"]),
                )
            )
    pods.sort(key=lambda p: (p.created, p.name))
    return Trace(tuple(servers), tuple(pods), multi)


def constrained_trace(trace: Trace, share: float, seed: int) -> Trace:
    """``trace`` with about ``share`` of its GPU pods pinned to one GPU model each.

    Deterministic in ``seed``: each GPU pod is pinned with probability ``share``, to a model
    drawn with probability proportional to the fleet's GPUs of that model, among the models
    with a server that could hold the pod empty (enough devices, CPU and RAM), so a pinned
    pod stays placeable and the scarce models are pinned as rarely as they are common.
    """
    capacity: dict[str, int] = {}
    largest: dict[str, tuple[int, int, int]] = {}  # model -> most devices, CPU, RAM
    for server in trace.servers:
        if not server.gpus:
            continue
        model = server.gpus[0].model
        capacity[model] = capacity.get(model, 0) + len(server.gpus)
        devices, cpu, ram = largest.get(model, (0, 0, 0))
        largest[model] = (
            max(devices, len(server.gpus)),
            max(cpu, server.capacity.cpu_milli),
            max(ram, server.capacity.ram_mib),
        )
    models = sorted(capacity)
    rng = random.Random(seed)
    pods = []
    for pod in trace.pods:
        res = pod.resources
        if res.gpu_milli and rng.random() < share:
            devices = max(1, res.gpu_milli // GPU_MILLI)
            fits = [
                m
                for m in models
                if largest[m][0] >= devices
                and largest[m][1] >= res.cpu_milli
                and largest[m][2] >= res.ram_mib
            ]
            if fits:
                model = rng.choices(fits, weights=[capacity[m] for m in fits])[0]
                pod = replace(pod, gpu_model=model)
        pods.append(pod)
    return replace(trace, pods=tuple(pods))


def arrivals(trace: Trace, seed: int) -> Iterator[TracePod]:
    """The pods in creation order, then pods resampled uniformly (with replacement, seeded)
    for ever: the caller stops once the arrived GPU demand is high enough."""
    yield from trace.pods
    rng = random.Random(seed)
    while True:
        yield rng.choice(trace.pods)


def as_pending(pod: TracePod, seq: int) -> PendingWorkload:
    """Arrival number ``seq`` as a pending workload (submit time = seq, so queue = arrivals)."""
    return PendingWorkload(
        workload_id=f"a{seq:06d}",
        priority=3,
        submitted_at=float(seq),
        resources=pod.resources,
        name=pod.name,
        gpu_model=pod.gpu_model if pod.resources.gpu_milli else None,
    )
