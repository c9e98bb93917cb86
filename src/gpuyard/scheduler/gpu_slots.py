"""GPU slot choice: which device indices a replica gets on one server.

Devices are addressed by *position* (their place in ``ServerView.gpus``) in the working
state and by their ``index`` in the result. ``positions`` lists the devices that may be used
(those of the requested model); ``alloc`` holds each device's allocated milli (0..1000).

- A whole-GPU request (a multiple of 1000 milli) takes only free devices (allocated 0). It
  prefers a contiguous run of device indices, taking the *smallest* run that is long enough
  (best fit), so longer free runs stay whole for later multi-GPU requests; without such a
  run it takes the lowest free indices.
- A share (0 < milli < 1000) packs onto the partly used device with the least room left
  after placing it (best fit), lowest index on ties. Only when no partly used device has room
  does it break a free device, chosen the same way as a one-GPU request (the shortest free
  run), so the longest runs of whole GPUs survive.
- A share that reserves GPU memory may only use devices with that much memory free: the
  callers narrow ``positions`` to those (``NodeState.devices_for``), and
  :func:`choose_batch` re-narrows them after each replica it places.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.scheduler.snapshot import GpuAllocation


def is_valid_gpu_request(gpu_milli: int) -> bool:
    """Whole GPUs (multiples of 1000) or a share of one GPU; 0 means no GPU."""
    return gpu_milli >= 0 and (gpu_milli % GPU_MILLI == 0 or gpu_milli < GPU_MILLI)


def choose_slots(
    indices: Sequence[int],
    alloc: Sequence[int],
    positions: Sequence[int],
    gpu_milli: int,
) -> GpuAllocation | None:
    """Devices for one replica asking ``gpu_milli``, or None when it does not fit."""
    if gpu_milli == 0:
        return ()
    if gpu_milli % GPU_MILLI == 0:
        count = gpu_milli // GPU_MILLI
        free = [p for p in positions if alloc[p] == 0]
        if len(free) < count:
            return None
        chosen = _pick_free(indices, free, count)
        return tuple(sorted((indices[p], GPU_MILLI) for p in chosen))
    if gpu_milli > GPU_MILLI:
        return None  # 1.5 GPUs is not a valid request (domain rejects it too)
    best_pos = -1
    best_key = (GPU_MILLI + 1, 0)
    for p in positions:
        used = alloc[p]
        if used > 0 and used + gpu_milli <= GPU_MILLI:
            key = (GPU_MILLI - used - gpu_milli, indices[p])
            if key < best_key:
                best_key, best_pos = key, p
    if best_pos >= 0:
        return ((indices[best_pos], gpu_milli),)
    free = [p for p in positions if alloc[p] == 0]
    if not free:
        return None
    return ((indices[_pick_free(indices, free, 1)[0]], gpu_milli),)


def choose_batch(
    indices: Sequence[int],
    alloc: Sequence[int],
    positions: Sequence[int],
    gpu_milli: int,
    count: int,
    memory: Sequence[int] = (),
    memory_mib: int = 0,
) -> list[GpuAllocation] | None:
    """Devices for ``count`` replicas placed one after another on the same server; with
    ``memory_mib``, each replica's device needs that much of ``memory`` (free MiB per
    position) left, counting what the replicas before it took."""
    work = list(alloc)
    free_memory = list(memory)
    pos_of = {index: p for p, index in enumerate(indices)}
    out: list[GpuAllocation] = []
    for _ in range(count):
        usable = positions
        if memory_mib:
            usable = [p for p in positions if free_memory[p] >= memory_mib]
        slots = choose_slots(indices, work, usable, gpu_milli)
        if slots is None:
            return None
        for index, milli in slots:
            work[pos_of[index]] += milli
            if memory_mib:
                free_memory[pos_of[index]] -= memory_mib
        out.append(slots)
    return out


def whole_free(alloc: Sequence[int], positions: Sequence[int]) -> int:
    """How many of ``positions`` are entirely free."""
    return sum(1 for p in positions if alloc[p] == 0)


def best_room(alloc: Sequence[int], positions: Sequence[int]) -> int:
    """The most milli any one of ``positions`` can still take (1000 for a free device)."""
    return max((GPU_MILLI - alloc[p] for p in positions), default=0)


def _pick_free(indices: Sequence[int], free: list[int], count: int) -> list[int]:
    """``count`` free positions: the shortest run of consecutive indices that is long enough."""
    ordered = sorted(free, key=lambda p: indices[p])
    runs: list[list[int]] = []
    for p in ordered:
        if runs and indices[p] == indices[runs[-1][-1]] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    fitting = [run for run in runs if len(run) >= count]
    if fitting:
        run = min(fitting, key=lambda r: (len(r), indices[r[0]]))
        return run[:count]
    return ordered[:count]
