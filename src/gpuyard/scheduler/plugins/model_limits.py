"""Admission check and filter ``model_limits``: per-GPU-model limits of teams.

A team (or a department, for its own work and its teams' together) may hold at most so many
GPUs of a model at once (``QueueNode.gpu_model_limits``). Usage counts every replica by the
devices it holds, so work that named no model is charged for the model it landed on.

- As an admission check, for work that can only land on a limited model (every model it
  accepts is that model or a variant of it, e.g. ``H100 80GB`` under a limit on ``H100``):
  as many replicas as the limit has room for, with a quota reason naming the model limit.
- As a filter, for every GPU request: a server whose usable devices include a model the
  team (or its department) has no room left of is off limits for it. On a server of
  several models this is conservative (its other devices are not offered either); fleets
  are rarely built so.

Preemption and reclaim check the same limits on the slots they would take
(``CycleState.model_limit_problem``). Without any per-model limit in the cycle the profile
drops this plugin (:meth:`applies`), so it costs nothing then.
"""

from __future__ import annotations

from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.framework import OK, AdmissionCheck, AdmitResult, Code, Filter, Status
from gpuyard.scheduler.gpu_match import ModelKey
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.state import CycleState, NodeState

#: The plugin's name, which its verdicts carry (a pending reason's code reads it).
MODEL_LIMITS = "model_limits"


def covers(limited: ModelKey, requested: ModelKey) -> bool:
    """Whether every device ``requested`` accepts is of the limited model."""
    if limited is None or requested is None:
        return False
    return all(any(alt <= want for alt in limited) for want in requested)


class ModelLimits:
    name = MODEL_LIMITS

    def applies(self, cycle: CycleState) -> bool:
        """Whether any team has a per-model limit in this cycle."""
        return bool(cycle.model_limits)

    def admit(self, req: Request, cycle: CycleState, replicas: int) -> AdmitResult:
        need = req.per_replica.gpu_milli
        team = req.workload.team_id
        if need <= 0 or team is None or not cycle.model_limits or req.model is None:
            return AdmitResult(replicas)
        result = AdmitResult(replicas)
        for key in cycle.limit_names:
            if not covers(key, req.model):
                continue
            room = cycle.model_room(team, key)
            if room is None:
                continue
            fits = max(0, room.room // need)
            if fits < result.allowed:
                total = need * (replicas if req.workload.gang else 1)
                result = AdmitResult(fits, PendingCode.QUOTA, room.exceeded(total))
        return result

    def filter(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        room = cycle.model_limit_blocks(
            req.workload.team_id, node, req.model, req.per_replica.gpu_milli
        )
        if room is None:
            return OK
        return Status(Code.UNAVAILABLE, self.name, f"{{has}} GPUs at the {room.label}")

    def explain(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        return self.filter(req, node, cycle)


_: type[AdmissionCheck] = ModelLimits
__: type[Filter] = ModelLimits
