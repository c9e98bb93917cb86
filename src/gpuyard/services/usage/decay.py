"""Time-based fair share: each tick of the history loop accrues every team's allocation
into its decayed usage (``team_usage_decay``; the arithmetic is
``scheduler/usage_decay.accrue``), while ``GPUYARD_FAIRSHARE_HALF_LIFE_S`` is set.

What a team holds is read once per tick (its allocations summed) and taken as held since
the team's last accrual, but never for longer than :data:`sampling.FRESH_INTERVALS`
sampling intervals: over a longer gap (the loop stopped, the setting was off) the old
figure only decays, since nobody saw what was held meanwhile. A team's first accrual
counts one interval.

One short read, the arithmetic with no transaction open, one short write in which each
row is a compare-and-set on its version (docs/concurrency.md #38): two processes ticking
the same slot (leases off) add the interval once, the later one finds the row changed
and leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.usage_decay import Vector, accrue
from gpuyard.services.context import ServiceContext
from gpuyard.store import team_usage
from gpuyard.store.team_usage import DecayedUsage

#: Sampling intervals a holding is assumed to have lasted at most (a longer gap only
#: decays): as many as a reading stays fresh (``sampling.FRESH_INTERVALS``).
COUNTED_INTERVALS = 3


@dataclass(frozen=True)
class Accrual:
    """What one accrual did: teams written, and teams another process accrued first."""

    written: int = 0
    lost: int = 0


def _vector(res: Resources) -> Vector:
    return (float(res.cpu_milli), float(res.ram_mib), float(res.storage_mib), float(res.gpu_milli))


def accrue_team_usage(ctx: ServiceContext, now: datetime) -> Accrual:
    """Decay every team's stored usage to ``now`` and add what it holds now over the time
    since its last accrual (bounded, see the module); nothing while the half-life is
    unset."""
    half_life = ctx.settings.fairshare_half_life_s
    if half_life is None:
        return Accrual()
    interval = float(ctx.settings.history_sample_interval_s)
    at = now.timestamp()
    with ctx.db.read() as session:
        held = team_usage.allocated_by_team(session)
        stored = team_usage.decayed_usage(session)
    updates: list[tuple[str, Vector, DecayedUsage | None]] = []
    for team_id in sorted(set(held) | set(stored)):
        used = _vector(held.get(team_id, Resources()))
        seen = stored.get(team_id)
        if seen is None:
            updates.append((team_id, accrue((0.0, 0.0, 0.0, 0.0), used, interval, half_life), None))
            continue
        elapsed = at - seen.accrued_at
        if elapsed <= 0:
            continue  # accrued at this instant already (or a clock that went back)
        counted = min(elapsed, COUNTED_INTERVALS * interval)
        updates.append((team_id, accrue(seen.history, used, elapsed, half_life, counted), seen))
    if not updates:
        return Accrual()
    written = lost = 0
    with ctx.db.write() as session:
        for team_id, history, seen in updates:
            if team_usage.put_decayed_usage(session, team_id, history, at, seen):
                written += 1
            else:
                lost += 1
    return Accrual(written, lost)
