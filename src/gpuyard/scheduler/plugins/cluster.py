"""Static filter ``cluster``: a workload pinned to a cluster runs only there."""

from __future__ import annotations

from gpuyard.scheduler.framework import OK, Code, StaticFilter, Status
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import ServerView

_OTHER_CLUSTER = Status(Code.UNRESOLVABLE, "cluster", "{is} in another cluster")


class ClusterFilter:
    name = "cluster"

    def filter_static(self, req: Request, server: ServerView) -> Status:
        wanted = req.workload.cluster_id
        if wanted is None or server.cluster_id == wanted:
            return OK
        return _OTHER_CLUSTER


_: type[StaticFilter] = ClusterFilter
