"""Per-cycle index of servers for one group of equal requests.

Requests that share a :data:`~gpuyard.scheduler.request.GroupKey` (cluster, GPU model,
labels, wants a GPU) pass the static filters on exactly the same servers, so those filters
run once per group and cycle, not once per workload. The servers that pass are bucketed by
how many whole devices of the group's model they have free, plus a set of servers with a
partly used device; a 4-GPU request then never looks at servers with fewer than 4 free
devices. Buckets follow every assume/forget through :class:`NodeListener`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.scheduler.framework import CandidateSource, StaticFilter, Status
from gpuyard.scheduler.gpu_match import ModelKey
from gpuyard.scheduler.request import GroupKey, Request
from gpuyard.scheduler.state import NodeListener, NodeState


class GroupIndex:
    """Servers that pass the static filters for one request group, bucketed by free GPUs."""

    def __init__(
        self,
        key: GroupKey,
        first: Request,
        nodes: Iterable[NodeState],
        static_filters: Iterable[StaticFilter],
    ) -> None:
        self.key = key
        self._model: ModelKey = first.model
        self.eligible: list[NodeState] = []
        self.eligible_ids: set[str] = set()
        #: Servers the static filters rejected, with the first failing verdict.
        self.rejected: list[tuple[NodeState, Status]] = []
        self._buckets: dict[int, dict[str, NodeState]] = {}
        self._bucket_of: dict[str, int] = {}
        self._partial: dict[str, NodeState] = {}
        filters = tuple(static_filters)
        for node in nodes:
            verdict = _first_failure(filters, first, node)
            if verdict is None:
                self.eligible.append(node)
                self.eligible_ids.add(node.id)
                node.listeners.append(self)
                self.node_changed(node)
            else:
                self.rejected.append((node, verdict))

    @property
    def total(self) -> int:
        return len(self.eligible) + len(self.rejected)

    # -- NodeListener ------------------------------------------------------------------
    def node_changed(self, node: NodeState) -> None:
        alloc = node.dev_alloc
        whole = 0
        partial = False
        for p in node.matching(self._model):
            used = alloc[p]
            if used == 0:
                whole += 1
            elif 0 < used < GPU_MILLI:
                partial = True
        old = self._bucket_of.get(node.id)
        if old != whole:
            if old is not None:
                bucket = self._buckets[old]
                del bucket[node.id]
                if not bucket:
                    del self._buckets[old]
            self._buckets.setdefault(whole, {})[node.id] = node
            self._bucket_of[node.id] = whole
        if partial:
            self._partial[node.id] = node
        else:
            self._partial.pop(node.id, None)

    # -- CandidateSource ---------------------------------------------------------------
    def buckets_ascending(self, minimum: int) -> Iterator[NodeState]:
        for free in sorted(k for k in self._buckets if k >= minimum):
            yield from self._buckets[free].values()

    def buckets_descending(self, minimum: int) -> Iterator[NodeState]:
        for free in sorted((k for k in self._buckets if k >= minimum), reverse=True):
            yield from self._buckets[free].values()

    def partial(self) -> Iterator[NodeState]:
        yield from self._partial.values()


def _first_failure(
    filters: tuple[StaticFilter, ...], req: Request, node: NodeState
) -> Status | None:
    for plugin in filters:
        verdict = plugin.filter_static(req, node.view)
        if not verdict.ok:
            return verdict
    return None


_l: type[NodeListener] = GroupIndex
_c: type[CandidateSource] = GroupIndex
