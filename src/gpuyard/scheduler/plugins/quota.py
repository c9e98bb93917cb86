"""Admission check ``quota``: a team's concurrently allocated cpu, ram and gpu are capped.

Usage counts what the snapshot says the team holds plus everything this cycle placed for it,
minus its replicas evicted in this cycle (:meth:`CycleState.charge_team`). A dimension whose
limit is None is unlimited; a team without a :class:`TeamQuota` is unlimited. A workload in
no team counts against its owner's personal quota (``scheduler.snapshot.quota_holder``),
which the services give every user in no team but admins when one is configured.
"""

from __future__ import annotations

from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
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
        quota = cycle.quotas.get(team) if team is not None else None
        if quota is None or team is None:
            return AdmitResult(replicas)
        used = cycle.team_used[team]
        allowed = replicas
        worst: tuple[str, int, int, int, int] | None = None
        for label, res_field, limit_field, unit in _DIMS:
            limit: int | None = getattr(quota, limit_field)
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
        whose = (
            "personal quota (users in no team)"
            if team.startswith(PERSONAL_QUOTA_PREFIX)
            else "team quota"
        )
        reason = (
            f"{whose} exceeded: {label} {_fmt(in_use, unit)}/{_fmt(limit, unit)} in use, "
            f"needs {_fmt(need, unit)}"
        )
        return AdmitResult(allowed, PendingCode.QUOTA, reason)


def _fmt(value: int, unit: int) -> str:
    return f"{round(value / unit, 3):g}"


_: type[AdmissionCheck] = QuotaCheck
