"""What the live stream's events carry (GET /api/v1/stream): documentation of the
``data:`` line of each event type, and the converters' targets."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class StreamPlacementPublic(BaseModel):
    replica: int
    server_id: str
    gpu_indices: list[int]


class WorkloadChangePublic(BaseModel):
    """``event: workload``: the workload's state after a committed change (its env,
    command and ports are not streamed: GET /workloads/{id} has them)."""

    id: str
    name: str
    owner_id: str
    team_id: str | None
    cluster_id: str | None
    status: str
    reason: str | None
    reason_code: str | None
    priority: int
    preemptible: bool
    replicas: int
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
    gpu_model: str | None
    server_id: str | None = Field(description="replica 0's server")
    gpu_indices: list[int] = Field(description="replica 0's GPUs on that server")
    placements: list[StreamPlacementPublic]
    preemption_count: int
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class QueueChangePublic(BaseModel):
    """``event: queue``: the queue changed (a workload entered or left it, or a waiting
    one changed); GET /api/v1/queue has the new order."""


class ResyncPublic(BaseModel):
    """``event: resync``: what was missed cannot be replayed; refetch, then carry on."""

    reason: str
