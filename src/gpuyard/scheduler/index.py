"""Per-cycle index of servers for one group of equal requests.

Requests that share a :data:`~gpuyard.scheduler.request.GroupKey` (cluster, GPU model,
labels, wants a GPU, wants a share of one) pass the static filters on exactly the same
servers, so those filters run once per group and cycle, not once per workload. The
servers that pass are bucketed by how many whole devices of the group's model they have
free, plus a set of servers with a partly used device; a 4-GPU request then never looks at
servers with fewer than 4 free devices. Buckets follow every assume/forget through
:class:`NodeListener`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gpuyard.scheduler.framework import CandidateSource, StaticFilter, Status
from gpuyard.scheduler.gpu_match import ModelKey
from gpuyard.scheduler.request import GroupKey, Request
from gpuyard.scheduler.state import NodeListener, NodeState
from gpuyard.scheduler.view_info import ViewCache, bucket_of


class GroupIndex:
    """Servers that pass the static filters for one request group, bucketed by free GPUs."""

    def __init__(
        self,
        key: GroupKey,
        first: Request,
        nodes: Iterable[NodeState],
        static_filters: Iterable[StaticFilter],
        views: ViewCache,
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
        # Static verdicts depend only on the view and on this key (the filter objects, the
        # group, and the model as written, which failure phrases quote), so they are kept
        # on each view's ViewInfo and reused by later cycles while the view is unchanged.
        wanted = first.workload.gpu_model if first.wants_gpu else None
        token = views.verdict_token((filters, key, wanted))
        model = self._model
        buckets = self._buckets
        bucket_of = self._bucket_of
        partial = self._partial
        eligible = self.eligible
        for node in nodes:
            info = node.info
            known, verdict = info.verdict(token)
            if not known:
                verdict = _first_failure(filters, first, node)
                info.remember(token, verdict)
            if verdict is not None:
                self.rejected.append((node, verdict))  # type: ignore[arg-type]
                continue
            eligible.append(node)
            node.listeners.append(self)
            if node.version:
                self.node_changed(node)
                continue
            # Untouched this cycle: its buckets are the view's, computed once per view.
            whole, is_partial = info.base_bucket(model)
            found = buckets.get(whole)
            if found is None:
                buckets[whole] = {node.id: node}
            else:
                found[node.id] = node
            bucket_of[node.id] = whole
            if is_partial:
                partial[node.id] = node
        self.eligible_ids.update(node.id for node in eligible)
        #: How many distinct device-model sets the eligible servers have (see
        #: :meth:`Placer.find`: the candidate cap applies per such class).
        self.model_classes = len({node.info.model_class for node in eligible})

    @property
    def total(self) -> int:
        return len(self.eligible) + len(self.rejected)

    # -- NodeListener ------------------------------------------------------------------
    def node_changed(self, node: NodeState) -> None:
        whole, partial = bucket_of(node.dev_alloc, node.matching(self._model))
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
