"""Starvation guard: a long-waiting workload reserves its best server.

A workload that has waited longer than ``starvation_seconds`` and still fits nowhere holds
a reservation on one server for the rest of the cycle: nothing behind it in the queue (all
lower priorities, and equal priorities that queue after it) may be placed there, so the
server drains towards fitting it instead of being refilled by smaller work (Slurm's and
Volcano's answer to head-of-line starvation). Reservations are recomputed every cycle.

The best server is the one that needs the least freed: among servers that pass the static
filters, are big enough in total, and are not held already, the one with the smallest
*shortfall* — the largest, over dimensions, of (amount missing / server capacity), GPUs
counted as missing whole devices of the model (or missing room for a share) over the
server's devices of the model — then the lowest server id.
"""

from __future__ import annotations

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.scheduler.index import GroupIndex
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.state import CycleState, NodeState


def is_starving(waiting_since: float, now: float, starvation_seconds: float) -> bool:
    return now - waiting_since > starvation_seconds


def shortfall(req: Request, node: NodeState) -> float | None:
    """How far ``node`` is from fitting one replica (0 = fits); None = never fits it."""
    res = req.per_replica
    cap = node.view.capacity
    positions = node.matching(req.model)
    if not res.fits_in(cap) or req.whole_gpus > len(positions):
        return None
    if req.gpu_memory_mib:
        # Only devices that have the share's GPU memory in all can ever hold it.
        gpus = node.view.gpus
        positions = tuple(p for p in positions if gpus[p].memory_mib >= req.gpu_memory_mib)
    if req.wants_gpu and not positions:
        return None
    worst = 0.0
    for want, free, total in (
        (res.cpu_milli, node.free_cpu, cap.cpu_milli),
        (res.ram_mib, node.free_ram, cap.ram_mib),
        (res.storage_mib, node.free_storage, cap.storage_mib),
    ):
        if want > free and total > 0:
            worst = max(worst, (want - free) / total)
    if req.whole_gpus:
        missing = req.whole_gpus - node.whole_free(positions)
        if missing > 0:
            worst = max(worst, missing / len(positions))
    elif req.share_milli:
        room = max(GPU_MILLI - node.dev_alloc[p] for p in positions)
        if room < req.share_milli:
            worst = max(worst, (req.share_milli - room) / (GPU_MILLI * len(positions)))
    return worst


def choose_reservation(req: Request, group: GroupIndex, cycle: CycleState) -> NodeState | None:
    """The server a starving ``req`` should hold (see the module docstring)."""
    best: NodeState | None = None
    best_key: tuple[float, str] = (0.0, "")
    for node in group.eligible:
        if node.id in cycle.holds:
            continue
        if cycle.model_limits and cycle.model_limit_blocks(
            req.workload.team_id, node, req.model, req.per_replica.gpu_milli
        ):
            continue  # its team may not take more of this server's GPU model
        missing = shortfall(req, node)
        if missing is None:
            continue
        key = (missing, node.id)
        if best is None or key < best_key:
            best, best_key = node, key
    return best
