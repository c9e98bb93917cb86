"""The history loop: one tick samples every server and the fleet, rolls closed buckets up
and prunes what is past its retention.

1. One read session: every server's allocation counters and GPUs, and the agents' last
   readings (``readings``; fresh ones only).
2. No transaction open: each server's usage, asked of its runtime
   (``Runtime.estimate_usage``: the simulated runtime makes it up from the allocation),
   else the agent's last reading, else unknown (absent figures, never 0).
3. One write: a raw sample per server plus the fleet's, one statement for the batch;
   ``ON CONFLICT DO NOTHING`` on (series, level, slot), so two processes sampling the
   same slot (leases off) write it once.
4. Rollups: each 1-minute bucket that closed since the newest one is computed from its
   raw samples (mean and highest per figure, ``domain.usage.roll_up``), each closed
   15-minute bucket from its minutes (``merge_rollups``, the server's figures only),
   one statement per level.
5. Pruning: each level's rows past its retention, at most :data:`PRUNE_BUCKETS_PER_TICK`
   buckets per level per tick, so a backlog (after downtime) is worked off over ticks.
"""

from __future__ import annotations

import time
from collections import defaultdict
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
from gpuyard.store import usage_history
from gpuyard.store.usage_history import SampleRow, ServerAllocation, StoredPoint
from gpuyard.store.usage_tables import FLEET_SERIES

LOOP = "history"
#: Raw samples, in the ``bucket_s`` column.
RAW = 0
#: Per level and tick, pruning deletes at most this many buckets' worth of rows.
PRUNE_BUCKETS_PER_TICK = 6
#: A reading older than this many probe (or sample) intervals is not used.
FRESH_INTERVALS = 3


@dataclass
class SamplingTick:
    """What one tick did, and how long each step took (seconds)."""

    slot: int
    servers: int = 0
    rolled_up: dict[int, int] = field(default_factory=dict)
    pruned: dict[int, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def sample_usage(ctx: ServiceContext) -> SamplingTick:
    """One tick of the history loop."""
    s = ctx.settings
    now = ctx.now()
    slot = bucket_start(int(now.timestamp()), s.history_sample_interval_s)
    tick = SamplingTick(slot)
    started = time.perf_counter()
    fresh_s = FRESH_INTERVALS * max(s.health_interval_s, s.history_sample_interval_s)
    with ctx.db.read() as session:
        servers = usage_history.server_allocations(session)
        readings = usage_history.readings_since(session, now - timedelta(seconds=fresh_s))
    tick.seconds["read"] = time.perf_counter() - started

    started = time.perf_counter()
    rows: list[SampleRow] = []
    allocations, samples = [], []
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
    rows.append(SampleRow(FLEET_SERIES, RAW, slot, 1, fleet_sample(allocations, samples)))
    tick.servers = len(servers)
    tick.seconds["sample"] = time.perf_counter() - started

    started = time.perf_counter()
    with ctx.db.write() as session:
        usage_history.insert_samples(session, rows)
    tick.seconds["write"] = time.perf_counter() - started

    started = time.perf_counter()
    for bucket in ROLLUP_BUCKETS:
        tick.rolled_up[bucket] = _roll_up_closed(ctx, bucket, slot)
    tick.seconds["roll_up"] = time.perf_counter() - started

    started = time.perf_counter()
    tick.pruned = _prune(ctx, slot)
    tick.seconds["prune"] = time.perf_counter() - started
    return tick


def _estimate(ctx: ServiceContext, server: ServerAllocation, now: datetime) -> UsageReading | None:
    load = ServerLoad(
        server.server_id,
        _share(server.cpu),
        _share(server.ram),
        server.gpus,
    )
    try:
        return ctx.runtimes.for_kind(server.kind).estimate_usage(load, now)
    except NotFound:  # a kind with no runtime here (kubernetes): usage unknown
        return None
    except Exception as exc:  # this server's figures only; the others are sampled
        report_item_failure(LOOP, f"server {server.server_id}", exc, "usage not estimated")
        return None


def _share(counter: tuple[int, int]) -> float:
    allocated, capacity = counter
    return allocated / capacity if capacity > 0 else 0.0


#: Each rolled-up level and the level it is computed from.
_SOURCE = {MINUTE_BUCKET_S: RAW, QUARTER_BUCKET_S: MINUTE_BUCKET_S}


def _roll_up_closed(ctx: ServiceContext, bucket: int, slot: int) -> int:
    """Write the rollups of every bucket of this level that closed since the newest one;
    how many rows were written."""
    source = _SOURCE[bucket]
    closed_until = bucket_start(slot, bucket)  # the bucket holding ``slot`` is still open
    with ctx.db.read() as session:
        newest = usage_history.newest_bucket(session, bucket)
        oldest_source = usage_history.oldest_bucket(session, source)
        if oldest_source is None:
            return 0
        start = bucket_start(oldest_source, bucket)
        if newest is not None:
            start = max(start, newest + bucket)
        if start >= closed_until:
            return 0
        found = usage_history.rows_between(session, source, start, closed_until)
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
    with ctx.db.write() as session:
        usage_history.insert_samples(session, rows)
    return len(rows)


def _server_only(figures: Figures) -> Figures:
    return {name: value for name, value in figures.items() if name in SERVER_FIGURES}


def _prune(ctx: ServiceContext, slot: int) -> dict[int, int]:
    s = ctx.settings
    retention = {
        RAW: s.history_raw_retention_s,
        MINUTE_BUCKET_S: s.history_minute_retention_s,
        QUARTER_BUCKET_S: s.history_quarter_retention_s,
    }
    pruned = {}
    with ctx.db.write() as session:
        for level, kept_s in retention.items():
            cutoff = slot - kept_s
            oldest = usage_history.oldest_bucket(session, level)
            if oldest is None or oldest >= cutoff:
                pruned[level] = 0
                continue
            width = level or s.history_sample_interval_s
            before = min(cutoff, oldest + PRUNE_BUCKETS_PER_TICK * width)
            pruned[level] = usage_history.delete_before(session, level, before)
    return pruned
