"""What every baseline shares: a mutable copy of the snapshot and the naive placement loop.

A baseline is *only* a server-choice rule (:class:`ServerChoice`). Everything else is the
same for all of them and deliberately naive: every workload looks at every server in
snapshot order (no index, no candidate cap), a server fits when every dimension fits and the
GPU slot choice succeeds, and the device slots on the chosen server come from the engine's
own :func:`~gpuyard.scheduler.gpu_slots.choose_slots` (over the devices with the GPU memory a
share asks for free, as the engine's), so the baselines differ from the engine only in which
*server* they pick. Multi-replica workloads place replica by replica;
a gang that does not fit entirely is rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.gpu_slots import choose_slots
from gpuyard.scheduler.snapshot import ClusterSnapshot, GpuAllocation, PendingWorkload


class Node:
    """One server of the baseline's working copy: free counters and device allocations."""

    __slots__ = (
        "_positions",
        "cap_cpu",
        "cap_gpu",
        "cap_ram",
        "dev_alloc",
        "dev_index",
        "dev_memory",
        "dev_models",
        "free_cpu",
        "free_gpu",
        "free_ram",
        "free_storage",
        "id",
        "online",
    )

    def __init__(
        self,
        server_id: str,
        capacity: Resources,
        allocated: Resources,
        devices: Sequence[tuple[int, str, int]],
        online: bool,
        free_memory: Sequence[int] = (),
    ) -> None:
        self.id = server_id
        self.online = online
        self.cap_cpu, self.cap_ram, self.cap_gpu = (
            capacity.cpu_milli,
            capacity.ram_mib,
            capacity.gpu_milli,
        )
        free = capacity - allocated
        self.free_cpu, self.free_ram = free.cpu_milli, free.ram_mib
        self.free_storage, self.free_gpu = free.storage_mib, free.gpu_milli
        self.dev_index = tuple(index for index, _, _ in devices)
        self.dev_models = tuple(model for _, model, _ in devices)
        self.dev_alloc = [milli for _, _, milli in devices]
        #: Free GPU memory (MiB) per device position.
        self.dev_memory = list(free_memory) or [0] * len(devices)
        self._positions: dict[ModelKey, tuple[int, ...]] = {}

    def positions(self, model: ModelKey) -> tuple[int, ...]:
        """Positions of the devices of ``model`` (all for None), cached: they never change."""
        found = self._positions.get(model)
        if found is None:
            found = tuple(p for p, m in enumerate(self.dev_models) if device_matches(model, m))
            self._positions[model] = found
        return found

    def slots(self, res: Resources, model: ModelKey) -> GpuAllocation | None:
        """Device slots for one replica of ``res`` here, or None when it does not fit."""
        if not self.online or (
            res.cpu_milli > self.free_cpu
            or res.ram_mib > self.free_ram
            or res.storage_mib > self.free_storage
            or res.gpu_milli > self.free_gpu
        ):
            return None
        if res.gpu_milli == 0:
            return ()
        positions = self.positions(model)
        if res.gpu_memory_mib:
            memory = self.dev_memory
            positions = tuple(p for p in positions if memory[p] >= res.gpu_memory_mib)
        return choose_slots(self.dev_index, self.dev_alloc, positions, res.gpu_milli)

    def take(self, res: Resources, alloc: GpuAllocation, sign: int = 1) -> None:
        self.free_cpu -= sign * res.cpu_milli
        self.free_ram -= sign * res.ram_mib
        self.free_storage -= sign * res.storage_mib
        self.free_gpu -= sign * res.gpu_milli
        for index, milli in alloc:
            pos = self.dev_index.index(index)
            self.dev_alloc[pos] += sign * milli
            self.dev_memory[pos] -= sign * res.gpu_memory_mib

    @property
    def whole_free(self) -> int:
        return sum(1 for a in self.dev_alloc if a == 0)


def fleet_of(snapshot: ClusterSnapshot) -> list[Node]:
    """The baseline's working copy of ``snapshot`` (which stays untouched)."""
    return [
        Node(
            s.id,
            s.capacity,
            s.allocated,
            [(g.index, g.model, g.allocated_milli) for g in s.gpus],
            s.status.value == "online",
            [g.free_memory_mib for g in s.gpus],
        )
        for s in snapshot.servers
    ]


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """The largest server's CPU and GPU, the normalisers of the FGD artifact's baselines."""

    max_cpu: int
    max_gpu: int

    @classmethod
    def of(cls, fleet: Sequence[Node]) -> FleetSpec:
        return cls(max((n.cap_cpu for n in fleet), default=1) or 1,
                   max((n.cap_gpu for n in fleet), default=1) or 1)  # fmt: skip


class ServerChoice(Protocol):
    """A baseline: pick one server among those that fit (``fits`` is in snapshot order)."""

    name: str
    #: True when only the first fitting server matters (first-fit stops scanning there).
    stops_at_first: bool

    def choose(
        self, res: Resources, fits: list[tuple[Node, GpuAllocation]], spec: FleetSpec
    ) -> int:
        """Index into ``fits`` of the chosen server."""
        ...


@dataclass
class BaselineRun:
    """What a baseline placed, and how long it took."""

    name: str
    placed: list[tuple[str, str, GpuAllocation]] = field(default_factory=list)
    considered: int = 0
    seconds: float = 0.0
    fleet: list[Node] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.placed) / self.seconds if self.seconds > 0 else 0.0


class NaivePlacer:
    """Places workloads one at a time with one :class:`ServerChoice` over a fleet copy."""

    def __init__(self, choice: ServerChoice, snapshot: ClusterSnapshot) -> None:
        self.choice = choice
        self.fleet = fleet_of(snapshot)
        self.spec = FleetSpec.of(self.fleet)

    def place(self, workload: PendingWorkload) -> list[tuple[str, str, GpuAllocation]]:
        """Place every missing replica (a gang all or none); returns what was placed."""
        res = workload.resources
        model = model_key(workload.gpu_model) if res.gpu_milli else None
        done: list[tuple[Node, GpuAllocation]] = []
        for _ in range(workload.replicas_missing):
            fits = _fits(self.fleet, res, model, self.choice.stops_at_first)
            if not fits:
                break
            node, alloc = fits[self.choice.choose(res, fits, self.spec)]
            node.take(res, alloc)
            done.append((node, alloc))
        if workload.gang and len(done) < workload.replicas_missing:
            for node, alloc in done:
                node.take(res, alloc, -1)
            return []
        return [(workload.workload_id, node.id, alloc) for node, alloc in done]

    @property
    def allocated_gpu_milli(self) -> int:
        return sum(n.cap_gpu - n.free_gpu for n in self.fleet)


def place_all(
    choice: ServerChoice,
    snapshot: ClusterSnapshot,
    pending: Sequence[PendingWorkload],
    max_seconds: float | None = None,
) -> BaselineRun:
    """Place ``pending`` in list order; stop after ``max_seconds`` (a time budget)."""
    placer = NaivePlacer(choice, snapshot)
    run = BaselineRun(choice.name, fleet=placer.fleet)
    started = time.perf_counter()
    for workload in pending:
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        run.considered += 1
        run.placed += placer.place(workload)
    run.seconds = time.perf_counter() - started
    return run


def _fits(
    fleet: list[Node], res: Resources, model: ModelKey, first_only: bool
) -> list[tuple[Node, GpuAllocation]]:
    fits = []
    for node in fleet:
        alloc = node.slots(res, model)
        if alloc is not None:
            fits.append((node, alloc))
            if first_only:
                break
    return fits
