"""Who holds a server's GPUs, as one reader may see it (GET /servers/{id}).

A holder the reader may read by the policy (workload.read) is named; any other is only
"in use", with its share and nothing that identifies the workload or its owner."""

from __future__ import annotations

from dataclasses import dataclass

from gpuyard.domain.fleet_records import Server


@dataclass(frozen=True)
class HeldBy:
    """The workload behind a holding, for a reader allowed to read it."""

    workload_id: str
    name: str
    owner_id: str
    owner_email: str | None


@dataclass(frozen=True)
class GpuHolding:
    """One replica's share of one device (milli: 1000 = the whole GPU)."""

    gpu_index: int
    milli: int
    replica: int | None
    #: None: held by a workload the reader may not read.
    held_by: HeldBy | None


@dataclass(frozen=True)
class ServerDetail:
    """A server with who holds each of its GPUs, as one reader may see it."""

    server: Server
    #: Sorted by device index; a device nobody holds has no entry.
    holdings: tuple[GpuHolding, ...]
