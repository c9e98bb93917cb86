"""Workspace file schemas: FileEntry, FilesPublic (the HTTP API's own; they happen to
match the agent's wire models field for field, but the two contracts change separately)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from gpuyard.domain.replica_access import WorkspaceFile, WorkspaceListing


class FileEntry(BaseModel):
    """One entry of a workspace directory (symbolic links are listed, never followed)."""

    name: str
    path: str
    type: Literal["file", "dir", "symlink", "other"]
    size: int
    modified_at: float

    @classmethod
    def of(cls, entry: WorkspaceFile) -> FileEntry:
        return cls(
            name=entry.name,
            path=entry.path,
            type=entry.type,
            size=entry.size,
            modified_at=entry.modified_at,
        )


class FilesPublic(BaseModel):
    path: str
    data: list[FileEntry]
    count: int
    used_bytes: int
    quota_bytes: int

    @classmethod
    def of(cls, listing: WorkspaceListing) -> FilesPublic:
        return cls(
            path=listing.path,
            data=[FileEntry.of(e) for e in listing.entries],
            count=len(listing.entries),
            used_bytes=listing.used_bytes,
            quota_bytes=listing.quota_bytes,
        )
