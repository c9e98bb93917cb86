"""Static filter ``status``: only online servers take new work."""

from __future__ import annotations

from gpuyard.domain.server_state import ServerStatus, accepts_new_work
from gpuyard.scheduler.framework import OK, Code, StaticFilter, Status
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import ServerView

_PHRASES = {
    ServerStatus.OFFLINE: "{is} offline",
    ServerStatus.DRAINING: "{is} draining",
    ServerStatus.MAINTENANCE: "{is} in maintenance",
}


class ServerStatusFilter:
    """Rejects servers that are draining, offline or in maintenance.

    The code is UNAVAILABLE, not UNRESOLVABLE: preemption cannot help, but the server may
    come back, so a workload that only fails here is not reported as never fitting.
    """

    name = "status"

    def filter_static(self, req: Request, server: ServerView) -> Status:
        if accepts_new_work(server.status):
            return OK
        phrase = _PHRASES.get(server.status, "{is} " + str(server.status))
        return Status(Code.UNAVAILABLE, self.name, phrase)


_: type[StaticFilter] = ServerStatusFilter
