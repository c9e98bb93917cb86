"""Audit log schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEventPublic(BaseModel):
    id: int
    at: datetime
    actor_id: str | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventsPublic(BaseModel):
    data: list[AuditEventPublic]
    count: int


class AuditVerificationPublic(BaseModel):
    """The hash chain walked from its first event, as ``gpuyard audit verify`` does."""

    intact: bool
    checked: int = Field(description="events that verified, from the first")
    first_bad_id: int | None = Field(description="the first event that does not verify")
    problem: str | None = Field(description="edited, missing or unlinked")
    head_hash: str | None = Field(
        description="the last event's hash when intact: keep it elsewhere to anchor the chain"
    )
