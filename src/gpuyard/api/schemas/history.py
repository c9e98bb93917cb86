"""Utilisation/allocation history: series of points, each a bucket with the mean and the
highest of the raw samples in it. Every figure is a percentage (0-100); a figure that was
not known in a bucket (no reading) is null."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gpuyard.domain.usage import HistoryWindow


class Figure(BaseModel):
    avg: float = Field(ge=0, le=100, description="mean of the bucket's raw samples, percent")
    max: float = Field(ge=0, le=100, description="highest raw sample in the bucket, percent")


class UsagePoint(BaseModel):
    """A server's (or the fleet's) figures in one bucket."""

    t: datetime = Field(description="start of the bucket")
    samples: int = Field(ge=0, description="raw samples the bucket holds")
    cpu_allocated: Figure | None = None
    ram_allocated: Figure | None = None
    storage_allocated: Figure | None = None
    gpu_allocated: Figure | None = None
    cpu_used: Figure | None = None
    ram_used: Figure | None = None
    gpu_utilization: Figure | None = Field(default=None, description="mean over its GPUs")
    gpu_memory_used: Figure | None = Field(default=None, description="mean over its GPUs")


class GpuUsagePoint(BaseModel):
    """One GPU's figures in one bucket."""

    t: datetime
    samples: int = Field(ge=0)
    allocated: Figure | None = Field(default=None, description="share of the device reserved")
    utilization: Figure | None = None
    memory_used: Figure | None = None


class GpuUsageSeries(BaseModel):
    index: int
    points: list[GpuUsagePoint]


class HistoryBase(BaseModel):
    window: HistoryWindow
    bucket_s: int = Field(description="width of each point, in seconds")
    since: datetime
    until: datetime
    unit: str = Field(default="percent", description="unit of every figure")
    points: list[UsagePoint]


class ServerHistoryPublic(HistoryBase):
    server_id: str
    gpus: list[GpuUsageSeries]


class FleetHistoryPublic(HistoryBase):
    pass
