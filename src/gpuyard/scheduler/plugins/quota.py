"""Admission check ``quota``: a team's concurrently allocated cpu, ram and gpu are capped.

Usage counts what the snapshot says the team holds plus everything this cycle placed for it,
minus its replicas evicted in this cycle (:meth:`CycleState.charge_team`). A dimension whose
limit is None is unlimited; a team without a :class:`TeamQuota` is unlimited. A workload in
no team counts against its owner's personal quota (``scheduler.snapshot.quota_holder``),
which the services give every user in no team but admins when one is configured. With a quota
tree, a team's department's limit caps the department's own work and its teams' together.
"""

from __future__ import annotations

from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.framework import AdmissionCheck, AdmitResult
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import PERSONAL_QUOTA_PREFIX
from gpuyard.scheduler.state import CycleState

# (dimension name in reasons, Resources field, TeamQuota limit field, units per API unit)
_DIMS = (
    ("cpu", "cpu_milli", "cpu_milli", 1000),
    ("ram_gb", "ram_mib", "ram_mib", MIB_PER_GB),
    ("gpu", "gpu_milli", "gpu_milli", GPU_MILLI),
)


class QuotaCheck:
    name = "quota"

    def admit(self, req: Request, cycle: CycleState, replicas: int) -> AdmitResult:
        team = req.workload.team_id
        if team is None:
            return AdmitResult(replicas)
        result = AdmitResult(replicas)
        quota = cycle.quotas.get(team)
        node = cycle.teams.get(team)
        if node is not None and cycle.children.get(team):
            # A department's own work: its limit covers its teams' work too.
            limits = (node.limit[0], node.limit[1], node.limit[3])
            used = _department_used(cycle, team)
            result = _tightest(req, replicas, limits, used, "department quota")
        elif quota is not None:
            limits = (quota.cpu_milli, quota.ram_mib, quota.gpu_milli)
            whose = (
                "personal quota (users in no team)"
                if team.startswith(PERSONAL_QUOTA_PREFIX)
                else "team quota"
            )
            result = _tightest(req, replicas, limits, cycle.team_used[team], whose)
        parent = node.parent_id if node is not None else None
        if parent is not None and parent in cycle.teams and parent != team:
            # A department's limit caps its own work and its teams' together.
            dept = cycle.teams[parent]
            limits = (dept.limit[0], dept.limit[1], dept.limit[3])
            used = _department_used(cycle, parent)
            verdict = _tightest(req, replicas, limits, used, "department quota")
            if verdict.allowed < result.allowed:
                result = verdict
        return result


def _department_used(cycle: CycleState, department: str) -> Resources:
    """What a department's own work and its teams' hold together now."""
    used = cycle.tree_used[department]
    for child in cycle.children.get(department, ()):
        used = used + cycle.tree_used[child]
    return used


def _tightest(
    req: Request,
    replicas: int,
    limits: tuple[int | None, int | None, int | None],
    used: Resources,
    what: str,
) -> AdmitResult:
    """How many of ``replicas`` fit under ``limits`` (cpu, ram, gpu) given ``used``."""
    allowed = replicas
    worst: tuple[str, int, int, int, int] | None = None
    for (label, res_field, _, unit), limit in zip(_DIMS, limits, strict=True):
        need: int = getattr(req.per_replica, res_field)
        if limit is None or need == 0:
            continue
        in_use: int = getattr(used, res_field)
        fits = max(0, (limit - in_use) // need)
        if fits < allowed:
            allowed = fits
            worst = (label, in_use, limit, need, unit)
    if worst is None:
        return AdmitResult(replicas)
    label, in_use, limit, need, unit = worst
    if req.workload.gang:
        need *= replicas
    reason = (
        f"{what} exceeded: {label} {_fmt(in_use, unit)}/{_fmt(limit, unit)} in use, "
        f"needs {_fmt(need, unit)}"
    )
    return AdmitResult(allowed, PendingCode.QUOTA, reason)


def _fmt(value: int, unit: int) -> str:
    return f"{round(value / unit, 3):g}"


_: type[AdmissionCheck] = QuotaCheck
