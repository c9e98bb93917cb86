"""Fleet overview schemas: totals, status counts, GPU models, what could start now."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import ResourcesPublic


class ServerCountsPublic(BaseModel):
    total: int
    online: int
    offline: int
    draining: int
    maintenance: int


class GpuModelCountPublic(BaseModel):
    model: str
    servers: int = Field(description="servers with at least one device of this model")
    devices: int
    free_devices: int = Field(
        description="devices with nothing allocated, on servers that take new work (online)"
    )
    allocated: float = Field(description="GPUs allocated on devices of this model")


class FreeNowPublic(BaseModel):
    """The largest request of one GPU model that could start now on one server."""

    gpu_model: str | None = Field(description="null: work without a GPU")
    servers: int = Field(description="online servers with a device of this model")
    gpu: int = Field(description="whole GPUs free together on one server")
    gpu_share: float = Field(
        description="the largest share (below 1, per gpu_share_min and gpu_share_step) one device "
        "of the model has room for; 0: none"
    )
    cpu: float = Field(description="cores free on the server with the most free whole GPUs")
    ram_gb: float = Field(description="GB free on that server")
    storage_gb: float = Field(description="GB free on that server")
    server_id: str | None = Field(description="that server; null when none qualifies")
    cluster_id: str | None


class FleetOverviewPublic(BaseModel):
    servers: ServerCountsPublic
    capacity: ResourcesPublic
    allocated: ResourcesPublic
    free: ResourcesPublic = Field(description="capacity less allocation on online servers")
    gpu_models: list[GpuModelCountPublic]
    free_now: list[FreeNowPublic] = Field(
        description="per GPU model (and null: no GPU), the largest request that could start "
        "now on one server, before team quotas"
    )
    gpu_share_min: float = Field(description="the smallest share of one GPU a request may ask for")
    gpu_share_step: float = Field(description="shares of one GPU come in multiples of this")
