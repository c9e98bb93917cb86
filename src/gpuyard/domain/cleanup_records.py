"""Host cleanup in runtime-neutral values: what to clean on a server, and what was (or
would be) removed there. The docker runtime converts the agent's wire models into these;
services and the API read nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Longest retention a caller may ask for (ten years); the setting has the same bound.
MAX_RETENTION_S = 10 * 365 * 86400.0


class CleanupKind(StrEnum):
    """What a cleanup item is."""

    CONTAINER = "container"
    IMAGE = "image"
    VOLUME = "volume"
    FILES = "files"


class CleanupOutcome(StrEnum):
    """What happened to one item: a dry run's items are ``planned``; ``skipped`` ones
    changed between the listing and the check right before their removal."""

    PLANNED = "planned"
    REMOVED = "removed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CleanupPolicy:
    """What a cleanup of one server may remove."""

    dry_run: bool
    #: Stopped containers and files directories untouched this long go.
    retention_s: float
    #: Workloads the control plane still holds on the server: their containers and files
    #: stay whatever their age.
    keep_workloads: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CleanupEntry:
    """One thing a cleanup would remove, removed, skipped or could not remove."""

    kind: CleanupKind
    id: str
    name: str
    size_bytes: int
    outcome: CleanupOutcome
    error: str | None = None


@dataclass(frozen=True)
class HostCleanupReport:
    """Every item with its outcome. ``total_bytes``: what a dry run would free, or what a
    real run freed. ``note``: why there was nothing to look at (a simulated server)."""

    dry_run: bool
    items: tuple[CleanupEntry, ...] = ()
    total_bytes: int = 0
    note: str | None = None

    @property
    def removed(self) -> int:
        return self._count(CleanupOutcome.REMOVED)

    @property
    def failed(self) -> int:
        return self._count(CleanupOutcome.FAILED)

    @property
    def skipped(self) -> int:
        return self._count(CleanupOutcome.SKIPPED)

    def _count(self, outcome: CleanupOutcome) -> int:
        return sum(1 for item in self.items if item.outcome is outcome)
