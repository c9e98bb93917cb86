"""In-place resize for the services layer (``PATCH /workloads/{id}`` with new resources)."""

from __future__ import annotations

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.gpu_slots import choose_slots, is_valid_gpu_request
from gpuyard.scheduler.snapshot import GpuAllocation, RunningReplica, ServerView


def resize_in_place(
    server: ServerView,
    current: RunningReplica,
    new: Resources,
    gpu_model: str | None,
) -> GpuAllocation | None:
    """The replica's GPU allocation after resizing it to ``new`` on the same server.

    The replica's current usage is taken off ``server`` first (``server.allocated`` and the
    devices' ``allocated_milli`` must include it); then ``new`` must fit what is free on
    every dimension. GPU devices it already holds are kept where possible: a whole-GPU
    request keeps its whole devices (the lowest indices first when it shrinks) and adds free
    devices by the usual slot choice when it grows; a share stays on its device when there
    is room. Only devices matching ``gpu_model`` with the GPU memory ``new`` asks for free
    (the replica's own counted as free) count. Returns ``()`` for no GPU, None when
    it does not fit (the services layer then re-queues it). The server's status is not
    checked: resizing a replica that already runs there is not new work.
    """
    if current.server_id != server.id:
        raise ValueError(f"replica runs on {current.server_id}, not on {server.id}")
    if not is_valid_gpu_request(new.gpu_milli):
        return None
    if not new.fits_in(server.free + current.resources):
        return None
    if new.gpu_milli == 0:
        return ()
    indices = tuple(g.index for g in server.gpus)
    alloc = [g.allocated_milli for g in server.gpus]
    pos_of = {index: p for p, index in enumerate(indices)}
    for index, milli in current.gpu_allocation:
        if index in pos_of:
            alloc[pos_of[index]] -= milli
    key = model_key(gpu_model)
    memory = [g.free_memory_mib for g in server.gpus]
    for index, _ in current.gpu_allocation:
        if index in pos_of:
            memory[pos_of[index]] += current.resources.gpu_memory_mib
    positions = [
        p
        for p, g in enumerate(server.gpus)
        if device_matches(key, g.model) and memory[p] >= new.gpu_memory_mib
    ]
    matching = set(positions)
    own = [pos_of[i] for i, _ in current.gpu_allocation if pos_of.get(i, -1) in matching]

    if new.gpu_milli % GPU_MILLI == 0:
        count = new.gpu_milli // GPU_MILLI
        keep = [p for p in own if alloc[p] == 0][:count]
        missing = count - len(keep)
        if missing == 0:
            return tuple(sorted((indices[p], GPU_MILLI) for p in keep))
        # Hide the kept devices from the slot choice, then add the missing ones.
        for p in keep:
            alloc[p] = GPU_MILLI
        extra = choose_slots(indices, alloc, positions, missing * GPU_MILLI)
        if extra is None:
            return None
        return tuple(sorted([(indices[p], GPU_MILLI) for p in keep] + list(extra)))

    for p in own:
        if alloc[p] >= 0 and alloc[p] + new.gpu_milli <= GPU_MILLI:
            return ((indices[p], new.gpu_milli),)
    return choose_slots(indices, alloc, positions, new.gpu_milli)
