"""Filter ``holds``: servers held for an earlier workload in the queue are off limits.

A hold is either a starvation *reservation* or the server where a *preemption* just freed
room for a preemptor (see :class:`~gpuyard.scheduler.state.Hold` for whom each keeps off:
victims and their peers never flow back into room freed for a preemptor). It runs after
``fit``, so a server rejected here would otherwise have fitted.
"""

from __future__ import annotations

from gpuyard.scheduler.framework import OK, Code, Filter, Status
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.state import CycleState, NodeState

RESERVED_PHRASE = "{is} reserved for a starving workload"
PREEMPTION_PHRASE = "{is} held for a preemptor"

_RESERVED = Status(Code.UNAVAILABLE, "holds", RESERVED_PHRASE)
_PREEMPTION = Status(Code.UNAVAILABLE, "holds", PREEMPTION_PHRASE)


class HoldsFilter:
    name = "holds"

    def filter(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        hold = cycle.blocked_by_hold(node.id, req.queue_pos, req.priority)
        if hold is None:
            return OK
        return _RESERVED if hold.kind == "reservation" else _PREEMPTION

    def explain(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        return self.filter(req, node, cycle)


_: type[Filter] = HoldsFilter
