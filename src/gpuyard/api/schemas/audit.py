"""Audit log schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


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
