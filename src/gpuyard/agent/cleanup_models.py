"""The wire contract of the agent's host cleanup (``POST /v1/cleanup``).

Imported by both sides (the agent's router and ``gpuyard.runtimes.docker``), as the other
agent models are.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpuyard.agent.models import WORKLOAD_ID_PATTERN

#: What the cleanup removes: stopped containers, dangling images, orphaned volumes and
#: orphaned workspace (files) directories, all of them gpuyard's own.
CleanupKind = Literal["container", "image", "volume", "files"]
#: ``planned``: a dry run's item; ``removed``; ``failed`` (with ``error``); ``skipped``: it
#: changed between the listing and the check right before its removal, so it stays.
CleanupOutcome = Literal["planned", "removed", "failed", "skipped"]
#: Ten years: longer retentions are refused rather than overflowing a date.
MAX_RETENTION_S = 10 * 365 * 86400.0
#: Workloads the control plane still holds on this host (allocations): bounded.
MAX_KEEP_WORKLOADS = 10_000

WorkloadId = Annotated[str, Field(pattern=WORKLOAD_ID_PATTERN)]


class CleanupRequest(BaseModel):
    """What to clean: a dry run lists, a real run removes."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = True
    retention_s: float = Field(
        default=86400.0,
        ge=0,
        le=MAX_RETENTION_S,
        description="stopped containers and files directories untouched this long go",
    )
    keep_workloads: list[WorkloadId] = Field(
        default_factory=list,
        max_length=MAX_KEEP_WORKLOADS,
        description="workloads whose containers and files stay whatever their age",
    )


class CleanupItem(BaseModel):
    """One thing the cleanup would remove, removed, or could not remove."""

    kind: CleanupKind
    id: str
    name: str
    size_bytes: int = Field(ge=0)
    outcome: CleanupOutcome
    error: str | None = None


class CleanupReport(BaseModel):
    """Every item with its outcome; ``total_bytes`` is what a dry run would free, or what a
    real run freed (its removed items' sizes, as measured right before each removal)."""

    dry_run: bool
    items: list[CleanupItem]
    total_bytes: int
    removed: int
    failed: int
    skipped: int
