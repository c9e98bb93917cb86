"""Server statuses and which of them accept new work."""

from __future__ import annotations

from enum import StrEnum


class ServerStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"


#: Statuses an admin may set through the API (offline is observed, never set by hand).
SETTABLE_SERVER_STATUSES: frozenset[ServerStatus] = frozenset(
    {ServerStatus.ONLINE, ServerStatus.DRAINING, ServerStatus.MAINTENANCE}
)


def accepts_new_work(status: ServerStatus) -> bool:
    return status is ServerStatus.ONLINE


class ClusterKind(StrEnum):
    DOCKER = "docker"
    KUBERNETES = "kubernetes"
    SIMULATED = "simulated"
