"""Host cleanup schemas: what to clean on a server, and what was (or would be) removed."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import RequestModel
from gpuyard.domain.cleanup_records import MAX_RETENTION_S, CleanupKind, CleanupOutcome


class ServerCleanupRequest(RequestModel):
    """A dry run (the default) lists what would go; ``dry_run: false`` removes it."""

    dry_run: bool = True
    retention_hours: Annotated[
        float | None,
        Field(
            default=None,
            ge=0,
            le=MAX_RETENTION_S / 3600,
            description="stopped containers and files unused this long go "
            "(default: the server setting GPUYARD_HOST_CLEANUP_RETENTION_S)",
        ),
    ] = None


class CleanupItemPublic(BaseModel):
    kind: CleanupKind
    id: str
    name: str
    size_bytes: int
    outcome: CleanupOutcome
    error: str | None = None


class ServerCleanupPublic(BaseModel):
    """``total_bytes``: what a dry run would free, or what a real run freed."""

    server_id: str
    server_name: str
    dry_run: bool
    items: list[CleanupItemPublic]
    total_bytes: int
    removed: int
    failed: int
    skipped: int
    note: str | None = None
