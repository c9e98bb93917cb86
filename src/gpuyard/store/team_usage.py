"""Repository of each team's decayed past allocation (``team_usage_decay``, migration
0023; time-based fair share, ``scheduler/usage_decay.py``) and of what each team holds
now. Never commits."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.domain.resources import Resources
from gpuyard.store.fleet_tables import ServerGpuRow
from gpuyard.store.usage_tables import TeamUsageDecayRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

Vector = tuple[float, float, float, float]


class DecayedUsage(NamedTuple):
    """One team's stored decayed usage (resource-seconds, internal units)."""

    history: Vector
    #: Seconds since the epoch of the last accrual.
    accrued_at: float
    version: int


def allocated_by_team(session: Session) -> dict[str, Resources]:
    """What each team's workloads hold now (their allocations summed; one statement)."""
    a = AllocationRow
    rows = session.execute(
        select(
            WorkloadRow.team_id,
            func.sum(a.cpu_milli),
            func.sum(a.ram_mib),
            func.sum(a.storage_mib),
            func.sum(a.gpu_milli),
        )
        .join(WorkloadRow, WorkloadRow.id == a.workload_id)
        .where(WorkloadRow.team_id.is_not(None))
        .group_by(WorkloadRow.team_id)
    )
    return {
        str(team): Resources(int(cpu or 0), int(ram or 0), int(storage or 0), int(gpu or 0))
        for team, cpu, ram, storage, gpu in rows
    }


def decayed_usage(session: Session) -> dict[str, DecayedUsage]:
    """Every team's stored decayed usage (teams never accrued have no entry)."""
    r = TeamUsageDecayRow
    rows = session.execute(
        select(
            r.team_id,
            r.cpu_milli_s,
            r.ram_mib_s,
            r.storage_mib_s,
            r.gpu_milli_s,
            r.accrued_at,
            r.version,
        )
    )
    return {
        team: DecayedUsage((cpu, ram, storage, gpu), accrued_at, version)
        for team, cpu, ram, storage, gpu, accrued_at, version in rows
    }


def put_decayed_usage(
    session: Session,
    team_id: str,
    history: Vector,
    accrued_at: float,
    seen: DecayedUsage | None,
) -> bool:
    """Store ``team_id``'s decayed usage if its row is still the one read (``seen``; None:
    it had none). False when another process accrued it meanwhile (nothing written: its
    accrual already counted the interval) or the team is gone."""
    values = {
        "cpu_milli_s": history[0],
        "ram_mib_s": history[1],
        "storage_mib_s": history[2],
        "gpu_milli_s": history[3],
        "accrued_at": accrued_at,
    }
    if seen is None:
        # A savepoint: a concurrent first insert (or a team deleted meanwhile) fails this
        # row alone, not the caller's transaction.
        try:
            with session.begin_nested():
                session.add(TeamUsageDecayRow(team_id=team_id, version=1, **values))
                session.flush()
        except IntegrityError:  # the key (another first insert) or the team's gone
            return False
        return True
    r = TeamUsageDecayRow
    result = session.execute(
        update(r)
        .where(r.team_id == team_id, r.version == seen.version)
        .values(version=seen.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def held_now(
    session: Session,
    *,
    team_ids: Collection[str] = (),
    teamless_owner: str | None = None,
    workload_id: str | None = None,
    excluding: str | None = None,
) -> tuple[Resources, dict[str, int]]:
    """What some work holds now: the workloads of ``team_ids``, the owner's work in no
    team (``teamless_owner``) or one workload (``workload_id``), less ``excluding``'s;
    its allocations summed, and its milli-GPUs by the model of the devices they are on
    (per-model limits count devices)."""
    a, w = AllocationRow, WorkloadRow
    query = select(
        a.server_id, a.cpu_milli, a.ram_mib, a.storage_mib, a.gpu_milli, a.gpu_allocation
    ).join(w, w.id == a.workload_id)
    if workload_id is not None:
        query = query.where(w.id == workload_id)
    elif teamless_owner is not None:
        query = query.where(w.team_id.is_(None), w.owner_id == teamless_owner)
    else:
        query = query.where(w.team_id.in_(list(team_ids)))
    if excluding is not None:
        query = query.where(w.id != excluding)
    rows = list(session.execute(query))
    total = Resources()
    for _server, cpu, ram, storage, gpu, _slots in rows:
        total = total + Resources(cpu, ram, storage, gpu)
    servers = {server for server, *_, gpu, slots in rows if gpu and slots}
    models: dict[tuple[str, int], str] = {}
    if servers:
        g = ServerGpuRow
        found = session.execute(
            select(g.server_id, g.gpu_index, g.model).where(g.server_id.in_(sorted(servers)))
        )
        models = {(server, index): model for server, index, model in found}
    by_model: dict[str, int] = {}
    for server, *_, slots in rows:
        for index, milli in slots or ():
            model = models.get((server, index))
            if model is not None:
                by_model[model] = by_model.get(model, 0) + milli
    return total, by_model


def gpu_models_on(session: Session, server_ids: Collection[str]) -> set[str]:
    """The models of the GPUs of ``server_ids``."""
    if not server_ids:
        return set()
    g = ServerGpuRow
    return set(session.scalars(select(g.model).where(g.server_id.in_(sorted(server_ids)))))
