"""What a runtime hands back for a running replica's workspace and shell.

Plain values shared by the runtimes (which produce them), the services (which pass them on)
and the api (which relays them), so that none of them depends on one runtime's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FileType = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True)
class WorkspaceFile:
    """One entry of a workspace directory (symbolic links are listed, never followed)."""

    name: str
    path: str
    type: FileType
    size: int
    modified_at: float


@dataclass(frozen=True)
class WorkspaceListing:
    """One directory of a workload's workspace on one server, and the workspace's usage."""

    path: str
    entries: tuple[WorkspaceFile, ...]
    used_bytes: int
    quota_bytes: int


@dataclass(frozen=True)
class ExecTarget:
    """Where and how to open a replica's exec WebSocket (for the control plane's relay)."""

    url: str
    headers: dict[str, str]
