"""What runtimes observe, in no runtime's wire format: replicas' containers and hosts'
inventories, and where a registered server is reached.

Each runtime converts its backend's answers into these at its own edge (the docker runtime
from the agent's models, a kubernetes runtime from pods and nodes); services read only
these, so a new runtime adds no branch to them. Times are UTC-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gpuyard.domain.fleet_records import Gpu
from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.domain.usage import UsageReading


class ReplicaState(StrEnum):
    """Where a replica's container is in its life (docker's words; other runtimes map
    theirs onto them)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"
    #: The backend reported a state this list does not know.
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, text: str) -> ReplicaState:
        """The state named ``text``; UNKNOWN for a name the list does not know."""
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


#: States a container does not come back from by itself.
ENDED_STATES = frozenset({ReplicaState.EXITED, ReplicaState.DEAD})


@dataclass(frozen=True)
class ReplicaObservation:
    """One gpuyard replica's container as its runtime reports it."""

    #: The runtime's id of the container (``Runtime.container_id`` of its handle).
    container_id: str
    workload_id: str
    replica: int
    state: ReplicaState
    #: The runtime's own name for the state ("" where it has none): kept where ``state``
    #: is UNKNOWN, a state this version does not know.
    state_text: str = field(default="", kw_only=True)
    #: Whether its process runs (a paused container still has one).
    running: bool
    image: str = ""
    exit_code: int | None = None
    #: Ended by the kernel at its memory limit.
    oom_killed: bool = False
    #: The backend's word on why it could not start or run, if any.
    error: str = ""
    #: It waits for what will not come by itself (kubernetes: an image that cannot be
    #: pulled): the reconcile loop fails its workload with ``error``.
    cannot_start: bool = field(default=False, kw_only=True)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        """Ended with an exit code that says how (the reconcile loop's finished replica)."""
        return self.state in ENDED_STATES and self.exit_code is not None


@dataclass(frozen=True)
class HostGpu:
    """One GPU of a host; None where the device does not say."""

    index: int
    uuid: str
    model: str
    memory_mib: int
    utilization_pct: float | None = None


@dataclass(frozen=True)
class HostInventory:
    """What a host has, as its runtime reports it: a reported server's capacity."""

    #: The name the host reports for itself (docker: its agent's name).
    reported_name: str
    cpu_count: int
    ram_mib: int
    storage_mib: int
    gpus: tuple[HostGpu, ...] = ()
    #: What the host is using now (None where its runtime reports no usage).
    usage: UsageReading | None = None
    #: Its CPU in millicores where it is not a whole count (a kubernetes node's
    #: allocatable less other pods' requests); None: ``cpu_count`` cores.
    cpu_milli: int | None = None

    @property
    def capacity(self) -> Resources:
        """The server's capacity, in stored units (every GPU whole)."""
        cpu_milli = self.cpu_count * 1000 if self.cpu_milli is None else self.cpu_milli
        return Resources(cpu_milli, self.ram_mib, self.storage_mib, GPU_MILLI * len(self.gpus))

    def server_gpus(self) -> list[Gpu]:
        """The GPUs as a server records them (nothing allocated yet)."""
        return [
            Gpu(
                index=gpu.index,
                uuid=gpu.uuid,
                model=gpu.model,
                memory_mib=gpu.memory_mib,
                allocated_milli=0,
                utilization_pct=gpu.utilization_pct,
            )
            for gpu in self.gpus
        ]


@dataclass(frozen=True)
class ServerEndpoint:
    """Where the control plane reaches one server, as its runtime says to record it:
    ``address`` is shown to administrators (docker: the agent's URL); ``secret`` is stored
    encrypted and never shown (docker: the agent's token). Both None when the runtime
    reaches its servers some other way (simulated: not at all)."""

    address: str | None = None
    secret: str | None = None
    #: A certificate to trust instead of the public CAs (docker: the agent's self-signed
    #: TLS certificate, PEM, pinned at registration); None: the usual verification.
    trust: str | None = None


@dataclass(frozen=True)
class ReachedServer:
    """A server about to be registered, as its runtime found it."""

    endpoint: ServerEndpoint
    inventory: HostInventory
