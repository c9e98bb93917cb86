"""Warm pools: pre-started containers of one image type, held by reservations like any
other workload's, and handed to a user's launch that matches them (issue 16).

Pure data and rules: what a pool asks for, the names and labels of its containers, and
whether a launch matches it. The store keeps pools (``store/pool_tables.py``); services
fill, claim and recover them (``services/pools/``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gpuyard.domain.files_paths import DEFAULT_FILES_PATH
from gpuyard.domain.priority import MIN_PRIORITY
from gpuyard.domain.resources import Resources

#: The priority of an available warm container: below every user priority, so the
#: scheduler evicts warm containers before any user work (only strictly higher evicts).
POOL_PRIORITY = MIN_PRIORITY - 1

#: The built-in owner of available warm containers: a user row that cannot log in
#: (inactive, no password hash that verifies), created by migration 0013.
POOL_OWNER_ID = "00000000000000000000000000p00100"
POOL_OWNER_EMAIL = "warm-pools@system.gpuyard.invalid"

#: An image type: a short slug ("nginx", "python", "ubuntu-ssh").
TYPE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
_TYPE = re.compile(TYPE_PATTERN)

#: The seed's container labels (plain keys, outside the agent's reserved ``gpuyard.``).
LABEL_POOL = "pool"
LABEL_TYPE = "type"
LABEL_STATUS = "status"
LABEL_POOL_INDEX = "pool_index"
LABEL_USER_ID = "user_id"
#: The labels that change when a warm container is assigned or released (an overlay on
#: the host: Docker's own labels are immutable).
MUTABLE_LABELS = (LABEL_STATUS, LABEL_USER_ID)

#: A node-selector key that names a server rather than a label of it (a pool pinned to
#: one server places its warm containers there).
SERVER_NAME_SELECTOR = "gpuyard.io/server-name"


class PoolState(StrEnum):
    """Where one warm container is: waiting for a launch, or handed to a user."""

    AVAILABLE = "available"
    ASSIGNED = "assigned"


def is_image_type(value: str) -> bool:
    """Whether ``value`` is an image type slug."""
    return bool(_TYPE.match(value))


@dataclass(frozen=True)
class PoolSpec:
    """A pool as its administrators define it."""

    id: str
    name: str
    image_type: str
    image: str
    #: Exactly one of the two: a pool on one server, or anywhere in a cluster.
    server_id: str | None
    cluster_id: str | None
    target_size: int
    port_min: int
    port_max: int
    container_port: int | None
    #: What each warm container reserves.
    request: Resources
    command: list[str] | None
    env: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    #: Where each warm container's files directory is mounted.
    files_path: str = DEFAULT_FILES_PATH

    @property
    def port_range(self) -> tuple[int, int]:
        return (self.port_min, self.port_max)


@dataclass(frozen=True)
class PoolMember:
    """One warm container of a pool (a workload row with pool columns)."""

    workload_id: str
    pool_index: int
    state: PoolState
    status: str
    owner_id: str
    name: str
    server_id: str | None
    host_port: int | None
    container_id: str | None


#: Refills after a failed warm container wait this long, doubled per failure in a row...
REFILL_BACKOFF_S = 5.0
#: ...up to this.
MAX_REFILL_BACKOFF_S = 300.0
#: Failures older than this are forgotten (a pool failing for longer keeps the longest
#: wait, as its latest failures are always within it).
FAILURE_WINDOW_S = 3600.0


@dataclass(frozen=True)
class PoolFailures:
    """A pool's warm containers that failed in a row (since the last one that started),
    within ``FAILURE_WINDOW_S``."""

    count: int
    first_at: datetime
    last_at: datetime
    last_reason: str | None

    def refill_delay_s(self) -> float:
        """How long after the last failure the pool loop waits before it refills."""
        doublings = max(0, min(self.count - 1, 30))
        return float(min(REFILL_BACKOFF_S * 2.0**doublings, MAX_REFILL_BACKOFF_S))

    def refill_at(self) -> datetime:
        return self.last_at + timedelta(seconds=self.refill_delay_s())


@dataclass(frozen=True)
class PoolStatus:
    """A pool with its members and their counts."""

    spec: PoolSpec
    members: tuple[PoolMember, ...]
    #: Its failures in a row, if its latest warm containers failed.
    failures: PoolFailures | None = None

    @property
    def available(self) -> int:
        """Warm containers running and ready to be claimed."""
        return sum(
            1 for m in self.members if m.state is PoolState.AVAILABLE and m.status == "running"
        )

    @property
    def warming(self) -> int:
        """Warm containers queued or starting (not claimable yet)."""
        return sum(
            1 for m in self.members if m.state is PoolState.AVAILABLE and m.status != "running"
        )

    @property
    def assigned(self) -> int:
        return sum(1 for m in self.members if m.state is PoolState.ASSIGNED)


@dataclass(frozen=True)
class LaunchShape:
    """What a launch asks for, as far as pool matching goes."""

    image: str
    request: Resources
    command: Sequence[str] | None
    env: Mapping[str, str]
    ports: Sequence[int]
    gpu_model: str | None
    cluster_id: str | None
    replicas: int
    gang: bool
    node_selector: Mapping[str, str]
    duration_s: float | None
    files_path: str = DEFAULT_FILES_PATH


@dataclass(frozen=True)
class WarmShape:
    """What one warm container runs, as its own workload row recorded it at insert (a
    PATCH of the pool's image leaves running ones as they were until they are replaced)."""

    image: str
    request: Resources
    command: Sequence[str] | None
    env: Mapping[str, str]
    ports: Sequence[int]
    files_path: str = DEFAULT_FILES_PATH


def launch_matches(warm: WarmShape, launch: LaunchShape, pool_cluster_id: str | None) -> bool:
    """Whether the warm container ``warm`` can be handed to ``launch`` as it runs: the
    same image and exactly the same resources, no command or env of its own (or the
    container's), at most the container's port, one replica, nothing that ties it to a
    place (a node selector, a GPU model) or a virtual duration, its files directory
    mounted where the container mounts it, and the launch's cluster
    (if it names one) is the pool's (``pool_cluster_id``: the pool's server's cluster
    for a pool on one server)."""
    if launch.image.strip() != warm.image or launch.request != warm.request:
        return False
    if launch.command is not None and list(launch.command) != list(warm.command or []):
        return False
    if launch.env and dict(launch.env) != dict(warm.env):
        return False
    if launch.ports and list(launch.ports) != list(warm.ports):
        return False
    if launch.replicas != 1 or launch.gang or launch.node_selector or launch.gpu_model:
        return False
    if launch.duration_s is not None or launch.files_path != warm.files_path:
        return False
    return launch.cluster_id is None or launch.cluster_id == pool_cluster_id


#: How much of the workload id ends a warm container's name.
NAME_ID_CHARS = 8


def container_name(
    image_type: str, pool_index: int, host_port: int | None, workload_id: str
) -> str:
    """The seed's container name, ``pool_<type>_<index>_<port>`` (port 0: none), then a
    piece of the workload id: a replacement at the same index and port, or a pool of the
    same type on the same server, never clashes with a container still stopping or
    waiting for its teardown."""
    return f"pool_{image_type}_{pool_index}_{host_port or 0}_{workload_id[:NAME_ID_CHARS]}"


def warm_name(image_type: str, pool_index: int) -> str:
    """The workload name of an available warm container."""
    return f"pool-{image_type}-{pool_index}"


def container_labels(
    image_type: str, pool_index: int, state: PoolState, user_id: str | None
) -> dict[str, str]:
    """The seed's labels on a warm container (``user_id`` empty while available)."""
    return {
        LABEL_POOL: "true",
        LABEL_TYPE: image_type,
        LABEL_STATUS: state.value,
        LABEL_POOL_INDEX: str(pool_index),
        LABEL_USER_ID: user_id or "",
    }


def free_indices(taken: set[int], count: int) -> list[int]:
    """The ``count`` lowest pool indices not in ``taken``."""
    found: list[int] = []
    index = 0
    while len(found) < count:
        if index not in taken:
            found.append(index)
        index += 1
    return found
