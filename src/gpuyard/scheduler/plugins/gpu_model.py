"""Static filter ``gpu_model``: a GPU request needs at least one device of its model.

Matching follows :mod:`gpuyard.scheduler.gpu_match` (whole words, case-insensitive). On a
server with mixed models only the matching devices count, here and in the fit filter and the
slot choice. Whether there are *enough* matching devices depends on the request size, so the
``fit`` filter checks that.
"""

from __future__ import annotations

from gpuyard.scheduler.framework import OK, Code, StaticFilter, Status
from gpuyard.scheduler.gpu_match import device_matches
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import ServerView


class GpuModelFilter:
    name = "gpu_model"

    def filter_static(self, req: Request, server: ServerView) -> Status:
        if not req.wants_gpu:
            return OK
        if any(device_matches(req.model, gpu.model) for gpu in server.gpus):
            return OK
        model = req.workload.gpu_model
        phrase = f"{{has}} no {model.strip()} GPUs" if req.model is not None and model else ""
        return Status(Code.UNRESOLVABLE, self.name, phrase or "{has} no GPUs")


_: type[StaticFilter] = GpuModelFilter
