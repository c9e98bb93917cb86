"""Idle culling's policies and a workload's culling status (issue 19)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import RequestModel
from gpuyard.domain.culling import (
    MAX_LIFETIME_S,
    MAX_THRESHOLD_PCT,
    MAX_WINDOW_S,
    MIN_LIFETIME_S,
    MIN_THRESHOLD_PCT,
    MIN_WINDOW_S,
)

ThresholdPct = Annotated[
    float,
    Field(
        ge=MIN_THRESHOLD_PCT,
        le=MAX_THRESHOLD_PCT,
        description="percent: below it a workload counts as idle",
    ),
]
WindowS = Annotated[
    int, Field(ge=MIN_WINDOW_S, le=MAX_WINDOW_S, description="seconds idle before the stop")
]
LifetimeS = Annotated[int, Field(ge=MIN_LIFETIME_S, le=MAX_LIFETIME_S)]


class ImageTypeCullingBody(RequestModel):
    """An image type's policy; a field left out (or null) is not set at this level."""

    mode: Literal["on", "off", "never"] | None = Field(
        default=None, description="on, off, or never (admins only); null: inherit"
    )
    threshold_pct: ThresholdPct | None = None
    window_s: WindowS | None = None


class TeamCullingBody(ImageTypeCullingBody):
    """A team's policy; ``max_lifetime_s``: the default lifetime of its open-ended
    workloads (those without duration_s that set none of their own)."""

    max_lifetime_s: LifetimeS | None = None


class CullingPolicyPublic(BaseModel):
    scope: str = Field(description="team or image_type")
    subject: str = Field(description="the team's id or the image type")
    mode: str | None
    threshold_pct: float | None
    window_s: int | None
    max_lifetime_s: int | None
    updated_by: str | None
    updated_at: datetime


class CullingDefaultsPublic(BaseModel):
    mode: str = Field(description="GPUYARD_IDLE_CULL_MODE")
    threshold_pct: float
    window_s: int
    warn_s: int = Field(description="how long before a stop its warning comes")
    interval_s: float = Field(description="how often the culling loop looks")


class CullingPoliciesPublic(BaseModel):
    default: CullingDefaultsPublic
    teams: list[CullingPolicyPublic]
    image_types: list[CullingPolicyPublic]


class EffectiveCullingPublic(BaseModel):
    idle_culling: bool
    off_by: str | None = Field(description="the level that switched idle culling off")
    threshold_pct: float
    window_s: int


class TeamCullingPublic(BaseModel):
    team_id: str
    policy: CullingPolicyPublic | None = Field(description="as set for the team; null: none")
    effective: EffectiveCullingPublic = Field(
        description="what applies to the team's workloads (an image type's policy may refine it)"
    )


class WorkloadCullingPublic(BaseModel):
    workload_id: str
    running: bool
    idle_culling: bool
    off_by: str | None
    threshold_pct: float
    window_s: int
    image_type: str | None
    max_lifetime_s: int | None
    lifetime_source: str | None
    idle_since: datetime | None
    idle_max_pct: float | None = Field(description="highest utilisation seen while idle")
    idle_warned_at: datetime | None
    idle_stop_at: datetime | None
    lifetime_warned_at: datetime | None
    lifetime_stop_at: datetime | None
    stop_at: datetime | None = Field(description="the earliest announced stop")
    seconds_left: float | None = Field(description="until stop_at; null: none announced")
    no_signal: bool = Field(description="its runtime reports no utilisation: never culled idle")
    no_signal_reason: str | None = Field(
        default=None,
        description="why there is no utilisation signal (a kubernetes cluster without "
        "metrics-server, a GPU pod); null: none given, or a signal",
    )
