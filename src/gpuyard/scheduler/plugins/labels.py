"""Static filter ``labels``: every ``node_selector`` pair must be a label of the server
(the key ``gpuyard.io/server-name`` names the server itself: a warm pool pinned to one
server places its containers there)."""

from __future__ import annotations

from gpuyard.domain.pools import SERVER_NAME_SELECTOR
from gpuyard.scheduler.framework import OK, Code, StaticFilter, Status
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import ServerView


class LabelsFilter:
    name = "labels"

    def filter_static(self, req: Request, server: ServerView) -> Status:
        selector = req.workload.node_selector
        labels = server.labels
        for key, value in selector.items():
            found = server.name if key == SERVER_NAME_SELECTOR else labels.get(key)
            if found != value:
                wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
                return Status(Code.UNRESOLVABLE, self.name, "{does} not match labels " + wanted)
        return OK


_: type[StaticFilter] = LabelsFilter
