"""Static filter ``whole_gpus``: a share of a GPU never lands on a server whose runtime
hands out whole devices only (a Kubernetes node: the NVIDIA device plugin allocates
``nvidia.com/gpu`` in whole units, so a pod asked for 0.5 would hold a whole device that
gpuyard counts as half)."""

from __future__ import annotations

from gpuyard.scheduler.framework import OK, Code, StaticFilter, Status
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import ServerView


class WholeGpusFilter:
    name = "whole_gpus"

    def filter_static(self, req: Request, server: ServerView) -> Status:
        if req.share_milli and server.whole_gpus_only:
            return Status(Code.UNRESOLVABLE, self.name, "{has} whole GPUs only (no shares)")
        return OK


_: type[StaticFilter] = WholeGpusFilter
