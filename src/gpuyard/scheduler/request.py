"""PreFilter: everything about one pending workload computed once per cycle.

Filters and scorers run once per (workload, server) pair, so they read this precomputed
state instead of re-deriving the request (kube-scheduler's ``PreFilter`` + ``CycleState``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.gpu_match import ModelKey, model_key
from gpuyard.scheduler.gpu_slots import is_valid_gpu_request
from gpuyard.scheduler.snapshot import PendingWorkload

if TYPE_CHECKING:
    from gpuyard.scheduler.state import NodeState

#: Requests with the same key pass the same static filters on every server:
#: (cluster_id, model words when a GPU is requested, node selector items, wants a GPU,
#: wants a share of one: servers of whole-GPU runtimes take no shares).
GroupKey = tuple[str | None, ModelKey, frozenset[tuple[str, str]], bool, bool]


@dataclass(frozen=True, slots=True)
class Request:
    """One pending workload as the filters and scorers see it."""

    workload: PendingWorkload
    #: Position in this cycle's queue; reservations block everything behind them.
    queue_pos: int
    per_replica: Resources
    whole_gpus: int  # devices per replica for whole-GPU requests, else 0
    share_milli: int  # milli of one device for a GPU share, else 0
    #: GPU memory (MiB) the share reserves on its device; 0: none asked for.
    gpu_memory_mib: int
    model: ModelKey  # None = any model (or no GPU requested)
    group_key: GroupKey
    valid_gpu: bool

    @property
    def id(self) -> str:
        return self.workload.workload_id

    @property
    def priority(self) -> int:
        return self.workload.priority

    @property
    def wants_gpu(self) -> bool:
        return self.per_replica.gpu_milli > 0

    def devices(self, node: NodeState) -> tuple[int, ...]:
        """Positions of ``node``'s devices this request may use now: its model's, and
        with a GPU memory request only those with that much memory free."""
        return node.devices_for(self.model, self.gpu_memory_mib)


def build_request(workload: PendingWorkload, queue_pos: int) -> Request:
    """Precompute the per-cycle state of ``workload`` (its PreFilter)."""
    res = workload.resources
    gpu = res.gpu_milli
    whole = gpu // GPU_MILLI if gpu and gpu % GPU_MILLI == 0 else 0
    share = gpu if 0 < gpu < GPU_MILLI else 0
    model = model_key(workload.gpu_model) if gpu else None
    selector = frozenset(workload.node_selector.items())
    return Request(
        workload=workload,
        queue_pos=queue_pos,
        per_replica=res,
        whole_gpus=whole,
        share_milli=share,
        gpu_memory_mib=res.gpu_memory_mib if share else 0,
        model=model,
        group_key=(workload.cluster_id, model, selector, gpu > 0, share > 0),
        valid_gpu=is_valid_gpu_request(gpu),
    )
