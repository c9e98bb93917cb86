"""API token schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import RequestModel
from gpuyard.domain.limits import MAX_TOKEN_DAYS


class ApiTokenCreate(RequestModel):
    name: str = Field(min_length=1, max_length=64, examples=["ci"])
    expires_in_days: int | None = Field(
        default=None, ge=1, le=MAX_TOKEN_DAYS, description="omit for a token that does not expire"
    )


class ApiTokenPublic(BaseModel):
    id: str
    name: str
    display_prefix: str = Field(description="the token's first characters")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="shown once; send it as 'Authorization: Bearer <token>'")


class ApiTokensPublic(BaseModel):
    data: list[ApiTokenPublic]
    count: int
