"""GET /fairshare: the quota tree with each team's guarantee, usage, borrowing and share."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ResourceAmounts(BaseModel):
    """An amount per resource, in API units (cores, GB, GPUs)."""

    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float


class ResourceLimits(BaseModel):
    """A team's limit (its quota) per resource, in API units; null where unlimited."""

    cpu: float | None
    ram_gb: float | None
    gpu: float | None


class ResourceWeights(BaseModel):
    """A team's over-quota weight per resource (its one weight where none is set apart)."""

    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float


class GpuModelSharePublic(BaseModel):
    model: str
    guarantee: float = Field(description="GPUs of this model guaranteed (part of `gpu`)")
    limit: float | None = Field(
        description="GPUs of this model held at once at most (a department: with its "
        "teams); null: no limit of this model"
    )
    used: float = Field(
        description="GPUs of this model the team's workloads hold (a department: with its teams)"
    )
    weight: int | None = Field(
        default=None,
        description="the team's over-quota weight of this model; null: its GPU weight",
    )
    fair_share: float | None = Field(
        default=None,
        description="GPUs of this model it would hold if the model's devices were divided "
        "now (guarantees of the model first, idle ones by each team's weight of the model, "
        "never past a limit of it or the demand of work pinned to it); null unless some "
        "team weighs the model",
    )


class FairShareTeamPublic(BaseModel):
    team_id: str
    name: str
    parent_id: str | None = Field(description="the department above; null at the top level")
    weight: float = Field(description="claim on idle capacity relative to the siblings")
    weights: ResourceWeights = Field(
        description="the over-quota weight of each resource (`weight` where none is set apart)"
    )
    guarantee: ResourceAmounts = Field(description="deserved quota, lent to others while idle")
    limit: ResourceLimits = Field(description="the team's quota: never exceeded, borrowed or not")
    used: ResourceAmounts = Field(description="allocated now (a department: with its teams)")
    pending: ResourceAmounts = Field(
        description="what its waiting work asks for (a department: with its teams)"
    )
    demand: ResourceAmounts = Field(description="used plus what its pending work asks for")
    fair_share: ResourceAmounts = Field(
        description="what it would hold if the fleet were divided now: guarantees first, "
        "idle capacity by weight, never past a limit or its demand"
    )
    borrowed: ResourceAmounts = Field(description="used above the guarantee")
    dominant_share: float = Field(
        description="DRF: the largest used/capacity ratio over the resources, each over its weight"
    )
    under_guarantee: bool
    gpu_models: list[GpuModelSharePublic] = Field(
        description="per-GPU-model guarantees (reclaimed for the team's work pinned to "
        "that model), limits (never exceeded) and weights, one entry per model (empty: "
        "none); every team lists each model some team weighs, with its fair share of it"
    )
    decayed_usage: ResourceAmounts = Field(
        description="time-based fair share: the allocation of the team (a department: "
        "with its teams) integrated over time with the half-life's decay, in core-, GB- "
        "and GPU-hours, as of the history loop's last tick; zero while it is off"
    )
    fairshare_factor: float = Field(
        description="Slurm's 2^(-U/S): U the dominant share of the decayed usage, S the "
        "weight over the siblings' weights; the queue divides the team's used/fair-share "
        "ratio by it among equal priorities (1: no history or off)"
    )


class FairSharePublic(BaseModel):
    capacity: ResourceAmounts = Field(description="the online fleet the shares are out of")
    half_life_s: float | None = Field(
        description="GPUYARD_FAIRSHARE_HALF_LIFE_S: the decay of past usage; null: "
        "time-based fair share is off (plain DRF)"
    )
    data: list[FairShareTeamPublic]
    count: int
