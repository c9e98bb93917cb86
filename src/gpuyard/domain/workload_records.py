"""Read models of the workloads aggregate: a workload with its placements, and its status
events, as services hand them to the API.

Pure data, built by the store (store/workloads.py) inside the session that read it, or from
the values a submission inserted; times are UTC-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpuyard.domain.files_paths import DEFAULT_FILES_PATH
from gpuyard.domain.resources import Resources


@dataclass(frozen=True)
class ReplicaPlacement:
    """Where one replica holds its reservation."""

    #: The allocation's id (host ports are recorded per allocation).
    allocation_id: str
    replica: int
    server_id: str
    #: ((gpu_index, milli), ...) on that server.
    gpus: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Workload:
    """A workload as its readers see it (``env`` holds the real values: who may read
    them is the caller's decision, services.identity.access.visible_env)."""

    id: str
    name: str
    owner_id: str
    team_id: str | None
    cluster_id: str | None
    status: str
    reason: str | None
    reason_code: str | None
    image: str
    command: list[str] | None
    env: Mapping[str, str]
    plain_env_keys: tuple[str, ...]
    ports: tuple[int, ...]
    #: What one replica asks for.
    request: Resources
    gpu_model: str | None
    priority: int
    preemptible: bool
    replicas: int
    gang: bool
    node_selector: Mapping[str, str]
    duration_s: float | None
    preemption_count: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: One per replica holding a reservation, by replica number.
    placements: tuple[ReplicaPlacement, ...]
    #: Whether the launch took a warm pool container (answered running at once).
    from_pool: bool = False
    #: The pool of a warm container (None for ordinary workloads), its index and state.
    pool_id: str | None = None
    pool_index: int | None = None
    pool_state: str | None = None
    #: Where its files directory is mounted in its containers (domain/files_paths.py).
    files_path: str = DEFAULT_FILES_PATH
    #: Stopped this long after it started, warned before (services/culling); None: never.
    max_lifetime_s: int | None = None


@dataclass(frozen=True)
class WorkloadEvent:
    """One status change (or recorded change) of a workload."""

    id: int
    workload_id: str
    at: datetime
    from_status: str | None
    to_status: str
    reason: str | None
    details: Mapping[str, Any]
