"""The history loop: one tick samples every server and the fleet, rolls closed buckets up
and prunes what is past its retention.

The tick is background work that must not slow the work people wait for: it runs in
steps of at most :data:`STEP_SERVERS` servers (or series), each step its own short read
and short write, and after each step it rests (:class:`Pacing`) so that it takes about
:data:`DUTY` of one core while the scheduler and the API share its interpreter and the
database's one writer (SQLite). At 5,000 8-GPU servers a single-transaction tick held the
writer for 0.3 s and the interpreter for 0.7 s every 10 s (2.6 s when a minute closed),
which tripled the end-to-end time to running of submissions that arrived meanwhile.

1. Servers in id order, a page at a time (one read session per page): their allocation
   counters and GPUs, and the agents' last readings (``readings``; fresh ones only).
2. No transaction open: each server's usage, asked of its runtime
   (``Runtime.estimate_usage``: the simulated runtime makes it up from the allocation),
   else the agent's last reading, else unknown (absent figures, never 0).
3. One write per page: a raw sample per server, one statement; then the fleet's sample.
   ``ON CONFLICT DO NOTHING`` on (series, level, slot), so two processes sampling the
   same slot (leases off) write it once.
4. Rollups: each 1-minute bucket that closed since the fleet's newest one is computed
   from its raw samples (mean and highest per figure, ``domain.usage.roll_up``), each
   closed 15-minute bucket from its minutes (``merge_rollups``, the server's figures
   only), a page of series at a time and the fleet's last: the fleet's rollup marks the
   bucket done, so a tick cut short is redone (the rows already written are skipped).
   At most :data:`ROLLUP_BUCKETS_PER_TICK` buckets per level per tick.
5. Pruning: each level's rows past its retention, at most :data:`PRUNE_BUCKETS_PER_TICK`
   buckets per level per tick, so a backlog (after downtime) is worked off over ticks.
6. Time-based fair share, while ``GPUYARD_FAIRSHARE_HALF_LIFE_S`` is set: every team's
   decayed usage is accrued (``services/usage/decay.py``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gpuyard.domain.errors import NotFound
from gpuyard.domain.usage import (
    CPU_ALLOCATED,
    GPU_ALLOCATED,
    MINUTE_BUCKET_S,
    QUARTER_BUCKET_S,
    RAM_ALLOCATED,
    ROLLUP_BUCKETS,
    SERVER_FIGURES,
    STORAGE_ALLOCATED,
    Figures,
    ServerLoad,
    UsageReading,
    bucket_start,
    fleet_sample,
    merge_rollups,
    roll_up,
    server_sample,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import report_item_failure
from gpuyard.services.usage.decay import accrue_team_usage
from gpuyard.store import usage_history
from gpuyard.store.usage_history import SampleRow, ServerAllocation, StoredPoint
from gpuyard.store.usage_tables import FLEET_SERIES

LOOP = "history"
#: Raw samples, in the ``bucket_s`` column.
RAW = 0
#: Per level and tick, pruning deletes at most this many buckets' worth of rows.
PRUNE_BUCKETS_PER_TICK = 6
#: Per level and tick, rollups compute at most this many buckets (a backlog after
#: downtime is worked off over ticks).
ROLLUP_BUCKETS_PER_TICK = 10
#: A reading older than this many probe (or sample) intervals is not used.
FRESH_INTERVALS = 3
#: Servers (or series) per step: one page read, sampled and written in one short
#: transaction each (about 40 ms of work at 8 GPUs a server on the reference machine).
STEP_SERVERS = 250
#: The share of one core a paced tick takes while it runs: after a step of T seconds it
#: rests T x (1 / DUTY - 1).
DUTY = 0.25
#: A paced tick rests for at most this share of its interval in all, so it ends well
#: before the next slot.
REST_SHARE = 0.5

Pause = Callable[[float], object]


class Pacing:
    """Rests between a tick's steps (see the module's docstring); without a ``pause``
    (tests, benchmarks of the work itself) it never rests."""

    def __init__(self, pause: Pause | None, budget_s: float) -> None:
        self._pause = pause
        self._left_s = budget_s
        self.rested_s = 0.0

    def after(self, step_started: float) -> None:
        """Rest after the step that started at ``step_started`` (perf_counter)."""
        if self._pause is None:
            return
        rest = min((time.perf_counter() - step_started) * (1 / DUTY - 1), self._left_s)
        if rest > 0:
            self._pause(rest)
            self._left_s -= rest
            self.rested_s += rest


@dataclass
class SamplingTick:
    """What one tick did, and how long each step took (seconds)."""

    slot: int
    servers: int = 0
    rolled_up: dict[int, int] = field(default_factory=dict)
    pruned: dict[int, int] = field(default_factory=dict)
    #: Teams whose decayed usage this tick accrued (time-based fair share).
    teams_accrued: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def sample_usage(ctx: ServiceContext, pause: Pause | None = None) -> SamplingTick:
    """One tick of the history loop; with ``pause`` (the loop passes ``time.sleep``) it
    rests between steps (:class:`Pacing`)."""
    s = ctx.settings
    now = ctx.now()
    slot = bucket_start(int(now.timestamp()), s.history_sample_interval_s)
    tick = SamplingTick(slot)
    pacing = Pacing(pause, REST_SHARE * s.history_sample_interval_s)
    fresh_since = now - timedelta(
        seconds=FRESH_INTERVALS * max(s.health_interval_s, s.history_sample_interval_s)
    )
    allocations: list[Mapping[str, tuple[int, int]]] = []
    samples: list[Mapping[str, float]] = []
    after: str | None = None
    while True:
        step = time.perf_counter()
        with ctx.db.read() as session:
            servers = usage_history.server_allocations(session, after, STEP_SERVERS)
            if not servers:
                break
            readings = usage_history.readings_since(
                session, fresh_since, (servers[0].server_id, servers[-1].server_id)
            )
        _add(tick, "read", step)
        started = time.perf_counter()
        rows = []
        for server in servers:
            allocated = {
                CPU_ALLOCATED: server.cpu,
                RAM_ALLOCATED: server.ram,
                STORAGE_ALLOCATED: server.storage,
                GPU_ALLOCATED: server.gpu,
            }
            reading = _estimate(ctx, server, now) or readings.get(server.server_id)
            sample = server_sample(allocated, server.gpus, reading)
            allocations.append(allocated)
            samples.append(sample)
            rows.append(SampleRow(server.server_id, RAW, slot, 1, sample))
        _add(tick, "sample", started)
        started = time.perf_counter()
        with ctx.db.write() as session:
            usage_history.insert_samples(session, rows)
        _add(tick, "write", started)
        tick.servers += len(servers)
        after = servers[-1].server_id
        if len(servers) < STEP_SERVERS:
            break
        pacing.after(step)

    started = time.perf_counter()
    fleet = SampleRow(FLEET_SERIES, RAW, slot, 1, fleet_sample(allocations, samples))
    with ctx.db.write() as session:
        usage_history.insert_samples(session, [fleet])
    _add(tick, "write", started)

    started = time.perf_counter()
    for bucket in ROLLUP_BUCKETS:
        tick.rolled_up[bucket] = _roll_up_closed(ctx, bucket, slot, pacing)
    _add(tick, "roll_up", started)

    started = time.perf_counter()
    tick.pruned = _prune(ctx, slot)
    _add(tick, "prune", started)

    started = time.perf_counter()
    tick.teams_accrued = accrue_team_usage(ctx, now).written
    _add(tick, "fairshare", started)
    tick.seconds["rest"] = pacing.rested_s
    return tick


def _add(tick: SamplingTick, step: str, started: float) -> None:
    tick.seconds[step] = tick.seconds.get(step, 0.0) + time.perf_counter() - started


def _estimate(ctx: ServiceContext, server: ServerAllocation, now: datetime) -> UsageReading | None:
    load = ServerLoad(
        server.server_id,
        _share(server.cpu),
        _share(server.ram),
        server.gpus,
    )
    try:
        return ctx.runtimes.for_kind(server.kind).estimate_usage(load, now)
    except NotFound:  # a kind this process has no runtime for: usage unknown
        return None
    except Exception as exc:  # this server's figures only; the others are sampled
        report_item_failure(LOOP, f"server {server.server_id}", exc, "usage not estimated")
        return None


def _share(counter: tuple[int, int]) -> float:
    allocated, capacity = counter
    return allocated / capacity if capacity > 0 else 0.0


#: Each rolled-up level and the level it is computed from.
_SOURCE = {MINUTE_BUCKET_S: RAW, QUARTER_BUCKET_S: MINUTE_BUCKET_S}


def _roll_up_closed(ctx: ServiceContext, bucket: int, slot: int, pacing: Pacing) -> int:
    """Write the rollups of the buckets of this level that closed since the fleet's newest
    one (at most :data:`ROLLUP_BUCKETS_PER_TICK`); how many rows were written."""
    source = _SOURCE[bucket]
    closed_until = bucket_start(slot, bucket)  # the bucket holding ``slot`` is still open
    with ctx.db.read() as session:
        newest = usage_history.newest_bucket(session, bucket, FLEET_SERIES)
        oldest_source = usage_history.oldest_bucket(session, source)
        if oldest_source is None:
            return 0
        start = bucket_start(oldest_source, bucket)
        if newest is not None:
            start = max(start, newest + bucket)
        end = min(closed_until, start + ROLLUP_BUCKETS_PER_TICK * bucket)
        if start >= end:
            return 0
        series = usage_history.series_between(session, source, start, end)
    # The fleet's rollup marks the buckets done, so it goes last.
    servers = [name for name in series if name != FLEET_SERIES]
    pages = [servers[i : i + STEP_SERVERS] for i in range(0, len(servers), STEP_SERVERS)]
    if FLEET_SERIES in series:
        pages.append([FLEET_SERIES])
    written = 0
    for page in pages:
        step = time.perf_counter()
        with ctx.db.read() as session:
            found = usage_history.rows_between(session, source, start, end, (page[0], page[-1]))
        wanted = set(page)  # a range of ids may hold the fleet's name too
        rows = _rollups([p for p in found if p.series in wanted], source, bucket)
        with ctx.db.write() as session:
            usage_history.insert_samples(session, rows)
        written += len(rows)
        pacing.after(step)
    return written


def _rollups(found: list[StoredPoint], source: int, bucket: int) -> list[SampleRow]:
    """The rows of ``bucket`` computed from the ``source`` level's points."""
    groups: dict[tuple[str, int], list[StoredPoint]] = defaultdict(list)
    for point in found:
        groups[(point.series, bucket_start(point.t, bucket))].append(point)
    rows = []
    for (series, t), points in groups.items():
        if source == RAW:
            count, figures = roll_up({k: v[0] for k, v in p.figures.items()} for p in points)
        else:
            count, figures = merge_rollups((p.samples, _server_only(p.figures)) for p in points)
        rows.append(SampleRow(series, bucket, t, count, figures))
    return rows


def _server_only(figures: Figures) -> Figures:
    return {name: value for name, value in figures.items() if name in SERVER_FIGURES}


def _prune(ctx: ServiceContext, slot: int) -> dict[int, int]:
    """Delete each level's rows past its retention, a bounded amount per level, each level
    in its own short write (none when nothing is due)."""
    s = ctx.settings
    retention = {
        RAW: s.history_raw_retention_s,
        MINUTE_BUCKET_S: s.history_minute_retention_s,
        QUARTER_BUCKET_S: s.history_quarter_retention_s,
    }
    with ctx.db.read() as session:
        oldest = {level: usage_history.oldest_bucket(session, level) for level in retention}
    pruned = {}
    for level, kept_s in retention.items():
        cutoff = slot - kept_s
        first = oldest[level]
        if first is None or first >= cutoff:
            pruned[level] = 0
            continue
        width = level or s.history_sample_interval_s
        before = min(cutoff, first + PRUNE_BUCKETS_PER_TICK * width)
        with ctx.db.write() as session:
            pruned[level] = usage_history.delete_before(session, level, before)
    return pruned
