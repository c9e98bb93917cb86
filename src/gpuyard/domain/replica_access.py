"""What a runtime hands back for a running replica's workspace and shell.

Plain values shared by the runtimes (which produce them), the services (which pass them on)
and the api (which relays them), so that none of them depends on one runtime's wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

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


class ExecStream(Protocol):
    """An open exec session speaking the agent's exec protocol (docs/agent.md): ``send``
    takes the user's frames (binary: stdin; text: JSON control messages), iterating gives
    the frames for the user (binary: output; text: the final exit or error message)."""

    async def send(self, frame: bytes | str) -> None: ...

    def __aiter__(self) -> AsyncIterator[bytes | str]: ...


@dataclass(frozen=True)
class ExecTarget:
    """Where and how to open a replica's exec session (for the control plane's relay):
    a WebSocket at ``url`` with ``headers`` speaking the agent's exec protocol, or, when
    ``opener`` is given, whatever it opens (a runtime whose backend speaks another protocol
    translates it there: kubernetes' ``channel.k8s.io``)."""

    url: str
    headers: dict[str, str]
    #: Opens the session (raising ``GpuyardError`` when it is refused); None: ``url``.
    opener: Callable[[], AbstractAsyncContextManager[ExecStream]] | None = field(
        default=None, compare=False
    )
