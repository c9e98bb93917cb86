"""Shared schema pieces."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """Request bodies: unknown fields and wrong types are errors, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResourcesPublic(BaseModel):
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
