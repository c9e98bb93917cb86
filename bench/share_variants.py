"""S5 with the API's GPU shares and GPU-memory requests (issue 21).

The trace's pods ask any milli of one GPU (460, 125 ...): the pure engine takes them as
they are, but a user of the API rounds up to what the API allows. Each variant re-shapes
the pods of :class:`~bench.trace.Trace` as a user would:

- ``trace (any milli)``: the pods as they are (today's S5 figure);
- ``0.1 shares``: each share rounded up to the next tenth (the API before issue 21; a share
  that rounds up to 1.0 asks one whole GPU);
- ``0.05 shares``: rounded up to the next 0.05 (the API's default rule now);
- ``0.05 shares + GPU memory``: as above, and each share also reserves GPU memory in
  proportion, sized for the smallest device it may land on (its model's, or 16 GB when it
  names none), rounded up to a whole GB, as a HAMi user sizes ``gpumem`` with the share.

Devices get their model's memory: P100, T4 and V100M16 16 GB, V100M32 32 GB, A10 24 GB;
the trace does not say what G2 and G3 are, so they are assumed to have 24 and 32 GB.
The baselines honour GPU memory as the engine does (only devices with a share's memory
free), so every variant compares the default profile with best-fit.

Rounding a share up reserves more than the pod uses, so a coarser step reserves more GPU
for the same pods: its "unallocated" figure is lower partly because of that waste, which
:func:`rounding_overhead` measures.
"""

from __future__ import annotations

import math
from dataclasses import replace

from bench.trace import Trace, TracePod
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB

#: GPU memory (GB) per model of the openb node list (G2, G3: assumed, see the docstring).
MODEL_MEMORY_GB = {
    "P100": 16,
    "T4": 16,
    "V100M16": 16,
    "V100M32": 32,
    "A10": 24,
    "G2": 24,
    "G3": 32,
}
SMALLEST_GB = min(MODEL_MEMORY_GB.values())

TRACE = "trace (any milli)"
TENTHS = "0.1 shares"
TWENTIETHS = "0.05 shares"
WITH_MEMORY = "0.05 shares + GPU memory"
VARIANTS = (TRACE, TENTHS, TWENTIETHS, WITH_MEMORY)


def rounded_share(milli: int, step: int) -> int:
    """``milli`` rounded up to the step; a share that reaches 1000 is one whole GPU."""
    return min(GPU_MILLI, math.ceil(milli / step) * step)


def _reshaped(pod: TracePod, step: int, memory: bool) -> TracePod:
    res = pod.resources
    if not 0 < res.gpu_milli < GPU_MILLI:
        return pod
    milli = rounded_share(res.gpu_milli, step)
    memory_mib = 0
    if memory and milli < GPU_MILLI:
        device_gb = MODEL_MEMORY_GB.get(pod.gpu_model or "", SMALLEST_GB)
        memory_mib = math.ceil(milli * device_gb / GPU_MILLI) * MIB_PER_GB
    return replace(pod, resources=replace(res, gpu_milli=milli, gpu_memory_mib=memory_mib))


def variant(trace: Trace, name: str) -> Trace:
    """``trace`` as the variant ``name`` re-shapes it (devices get their memory always)."""
    servers = tuple(
        replace(
            s,
            gpus=tuple(
                replace(g, memory_mib=MODEL_MEMORY_GB.get(g.model, SMALLEST_GB) * MIB_PER_GB)
                for g in s.gpus
            ),
        )
        for s in trace.servers
    )
    if name == TRACE:
        pods = trace.pods
    else:
        step = 100 if name == TENTHS else 50
        pods = tuple(_reshaped(p, step, name == WITH_MEMORY) for p in trace.pods)
    return Trace(servers, pods, trace.multi_model_pods)


def rounding_overhead(trace: Trace, step: int) -> float:
    """GPU milli the share pods reserve beyond what they use when rounded up to ``step``,
    as a fraction of what they use (0.1 = 10% more reserved than used)."""
    used = reserved = 0
    for pod in trace.pods:
        milli = pod.resources.gpu_milli
        if 0 < milli < GPU_MILLI:
            used += milli
            reserved += rounded_share(milli, step)
    return reserved / used - 1 if used else 0.0
