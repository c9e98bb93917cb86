"""Read models of the fleet as a whole: totals per dimension, server counts by status,
GPU counts by model, and what could start now (the dashboard's overview and its launch
dialog). Built by services/fleet/overview.py from the scheduler's snapshot; aggregates
only, so nothing in them names a workload or its owner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpuyard.domain.resources import DEFAULT_GPU_SHARES, GpuShareRule, Resources


def largest_gpu_share(room_milli: int, shares: GpuShareRule = DEFAULT_GPU_SHARES) -> int:
    """The largest share a request may ask for that fits in ``room_milli`` of one device
    (0 when none does), under the configured share rule."""
    return shares.largest_within(room_milli)


@dataclass(frozen=True)
class GpuModelCount:
    """The devices of one model across the fleet."""

    model: str
    #: Servers that have at least one device of this model.
    servers: int
    devices: int
    #: Devices with nothing allocated, on servers that take new work.
    free_devices: int
    #: GPU milli-units allocated on devices of this model (1000 = one GPU).
    allocated_milli: int


@dataclass(frozen=True)
class FreeNow:
    """The largest request of one GPU model that could start now on one server.

    ``gpu_model`` None: work without a GPU. Whole GPUs, cpu, ram and storage are what the
    server with the most free whole devices of the model has free (ties: the most free
    cpu, then ram, then storage), so the numbers fit together on that one server;
    ``gpu_share_milli`` is the largest share any single device of the model has room for,
    on any server that takes new work. All zero when nothing of the model is free. Devices
    count under their exact model string (a request naming fewer words, "A100", may also
    match other models' devices: scheduler/gpu_match.py).
    """

    gpu_model: str | None
    #: Servers that take new work and have a device of this model (all of them for None).
    servers: int
    whole_gpus: int
    gpu_share_milli: int
    #: cpu, ram and storage free on the server with the most free whole devices.
    alongside: Resources
    server_id: str | None
    cluster_id: str | None


@dataclass(frozen=True)
class FleetOverview:
    """Totals of the fleet, per dimension, in stored units."""

    #: Servers by status (every status present, zero when none).
    servers_by_status: Mapping[str, int]
    capacity: Resources
    allocated: Resources
    #: Capacity less allocation, summed over the servers that take new work.
    free: Resources
    gpu_models: tuple[GpuModelCount, ...]
    free_now: tuple[FreeNow, ...]
    #: The shares of one GPU a request may ask for (so a form can check them as we do).
    gpu_shares: GpuShareRule = DEFAULT_GPU_SHARES
