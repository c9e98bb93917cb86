"""Filter ``fit``: every dimension fits the server, including GPU slots.

Two kinds of "no", after kube's ``NodeResourcesFit``:

- UNRESOLVABLE when the request exceeds the server's *total* capacity on some dimension, or
  asks for more whole GPUs than the server has devices of the requested model;
- UNSCHEDULABLE when it fits the totals but not what is free now (evicting work could help).

Each carries :class:`InsufficientResource` numbers for the pending reason. GPU room is judged
per device: a whole-GPU request needs that many entirely free devices of the model; a share
needs one device of the model with that much room left (and, when it reserves GPU memory,
that much memory free on the same device).
"""

from __future__ import annotations

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.scheduler.framework import (
    CPU,
    GPU_DEVICES,
    GPU_MEMORY,
    GPU_MILLI_TOTAL,
    GPU_SHARE,
    OK,
    RAM,
    STORAGE,
    Code,
    Filter,
    InsufficientResource,
    Status,
)
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.state import CycleState, NodeState

_DOES_NOT_FIT = Status(Code.UNSCHEDULABLE, "fit")


class FitFilter:
    name = "fit"

    def filter(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        # This runs for every (workload, server) pair the search looks at: no numbers here.
        if node.fits_aggregate(req.per_replica) and _gpu_room(req, node) >= 0:
            return OK
        return _DOES_NOT_FIT

    def explain(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        if node.fits_aggregate(req.per_replica) and _gpu_room(req, node) >= 0:
            return OK
        res = req.per_replica
        cap = node.view.capacity
        positions = node.matching(req.model)
        too_big: list[InsufficientResource] = []
        for name, want, total in (
            (CPU, res.cpu_milli, cap.cpu_milli),
            (RAM, res.ram_mib, cap.ram_mib),
            (STORAGE, res.storage_mib, cap.storage_mib),
        ):
            if want > total:
                too_big.append(InsufficientResource(name, want, total, total))
        if req.whole_gpus > len(positions):
            too_big.append(
                InsufficientResource(GPU_DEVICES, req.whole_gpus, len(positions), len(positions))
            )
        gpus = node.view.gpus
        most_memory = max((gpus[p].memory_mib for p in positions), default=0)
        if req.gpu_memory_mib > most_memory:
            too_big.append(
                InsufficientResource(GPU_MEMORY, req.gpu_memory_mib, most_memory, most_memory)
            )
        if too_big:
            return Status(Code.UNRESOLVABLE, self.name, "", tuple(too_big))

        short: list[InsufficientResource] = []
        for name, want, free, total in (
            (CPU, res.cpu_milli, node.free_cpu, cap.cpu_milli),
            (RAM, res.ram_mib, node.free_ram, cap.ram_mib),
            (STORAGE, res.storage_mib, node.free_storage, cap.storage_mib),
        ):
            if want > free:
                short.append(InsufficientResource(name, want, free, total))
        if req.whole_gpus:
            free_devices = node.whole_free(positions)
            if free_devices < req.whole_gpus:
                short.append(
                    InsufficientResource(GPU_DEVICES, req.whole_gpus, free_devices, len(positions))
                )
        elif req.share_milli:
            room = max((GPU_MILLI - node.dev_alloc[p] for p in positions), default=0)
            if room < req.share_milli:
                short.append(InsufficientResource(GPU_SHARE, req.share_milli, room, GPU_MILLI))
            elif req.gpu_memory_mib:
                alloc = node.dev_alloc
                room_for = [p for p in positions if alloc[p] + req.share_milli <= GPU_MILLI]
                free_memory = max((node.dev_memory[p] for p in room_for), default=0)
                if free_memory < req.gpu_memory_mib:
                    short.append(
                        InsufficientResource(
                            GPU_MEMORY, req.gpu_memory_mib, free_memory, most_memory
                        )
                    )
        if not short and res.gpu_milli > node.free_gpu:
            # Device data and the server total disagree; trust the stricter of the two.
            short.append(
                InsufficientResource(GPU_MILLI_TOTAL, res.gpu_milli, node.free_gpu, cap.gpu_milli)
            )
        return Status(Code.UNSCHEDULABLE, self.name, "", tuple(short))


def _gpu_room(req: Request, node: NodeState) -> int:
    """Spare devices (whole) or spare milli (share) after placing one replica; <0 = no fit."""
    if req.whole_gpus:
        return node.whole_free_of(req.model) - req.whole_gpus
    if req.share_milli:
        alloc = node.dev_alloc
        best = -1
        for p in req.devices(node):
            room = GPU_MILLI - alloc[p] - req.share_milli
            if room > best and alloc[p] >= 0:
                best = room
        return best
    return 0


_: type[Filter] = FitFilter
