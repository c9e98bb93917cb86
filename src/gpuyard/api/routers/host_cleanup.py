"""Host cleanup of one server: POST /api/v1/servers/{id}/cleanup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.schemas.host_cleanup import (
    CleanupItemPublic,
    ServerCleanupPublic,
    ServerCleanupRequest,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.fleet.host_cleanup import clean_server

router = APIRouter(prefix="/servers", tags=["servers"])
Cleaner = Annotated[Caller, requires(Permission.SERVER_CLEANUP)]


@router.post("/{server_id}/cleanup", response_model=ServerCleanupPublic)
def clean_up_server(
    ctx: ContextDep, caller: Cleaner, server_id: str, body: ServerCleanupRequest
) -> ServerCleanupPublic:
    """Stopped gpuyard containers past the retention, dangling images, orphaned volumes
    and files directories of the server: a dry run lists them with their sizes, a real
    run removes them (recorded as a server event) and says what each item became."""
    hours = body.retention_hours
    done = clean_server(
        ctx,
        caller,
        server_id,
        dry_run=body.dry_run,
        retention_s=None if hours is None else hours * 3600,
    )
    report = done.report
    return ServerCleanupPublic(
        server_id=done.server_id,
        server_name=done.server_name,
        dry_run=report.dry_run,
        items=[
            CleanupItemPublic(
                kind=item.kind,
                id=item.id,
                name=item.name,
                size_bytes=item.size_bytes,
                outcome=item.outcome,
                error=item.error,
            )
            for item in report.items
        ],
        total_bytes=report.total_bytes,
        removed=report.removed,
        failed=report.failed,
        skipped=report.skipped,
        note=report.note,
    )
