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
4. Rollups: each 1-minute and 15-minute bucket that closed since the newest rollup of its
   level is computed from the raw samples (mean and highest per figure,
   ``domain.usage.roll_up``) and written in one statement.
5. Pruning: each level's rows past its retention, at most :data:`PRUNE_BUCKETS_PER_TICK`
   buckets per level per tick, so a backlog (after downtime) is worked off over ticks.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gpuyard.domain.errors import NotFound
from gpuyard.domain.usage import (
    CPU_ALLOCATED,
    GPU_ALLOCATED,
    MINUTE_BUCKET_S,
    QUARTER_BUCKET_S,
    RAM_ALLOCATED,
    ROLLUP_BUCKETS,
    STORAGE_ALLOCATED,
    ServerLoad,
    UsageReading,
    bucket_start,
    fleet_sample,
    roll_up,
    server_sample,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import report_item_failure
from gpuyard.store import usage_history
from gpuyard.store.usage_history import ServerAllocation
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
    rows: list[dict[str, Any]] = []
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
        rows.append(_row(server.server_id, RAW, slot, 1, _rounded(sample)))
    fleet = fleet_sample(allocations, samples)
    rows.append(_row(FLEET_SERIES, RAW, slot, 1, _rounded(fleet)))
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


def _estimate(ctx: ServiceContext, server: ServerAllocation, now: Any) -> UsageReading | None:
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


def _rounded(sample: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in sample.items()}


def _row(series: str, bucket_s: int, t: int, samples: int, figures: Any) -> dict[str, Any]:
    return {"series": series, "bucket_s": bucket_s, "t": t, "samples": samples, "figures": figures}


def _roll_up_closed(ctx: ServiceContext, bucket: int, slot: int) -> int:
    """Write the rollups of every bucket of this level that closed since the newest one;
    how many rows were written."""
    closed_until = bucket_start(slot, bucket)  # the bucket holding ``slot`` is still open
    raw_kept_since = slot - ctx.settings.history_raw_retention_s
    with ctx.db.read() as session:
        newest = usage_history.newest_bucket(session, bucket)
        if newest is not None:
            start = newest + bucket
        else:
            oldest_raw = usage_history.oldest_bucket(session, RAW)
            if oldest_raw is None:
                return 0
            start = bucket_start(oldest_raw, bucket)
        start = max(start, bucket_start(raw_kept_since, bucket))
        if start >= closed_until:
            return 0
        raw = usage_history.raw_samples_between(session, start, closed_until)
    groups: dict[tuple[str, int], list[dict[str, float]]] = defaultdict(list)
    for series, t, figures in raw:
        groups[(series, bucket_start(t, bucket))].append(figures)
    rows = []
    for (series, t), group in groups.items():
        count, figures = roll_up(group)
        rolled = {name: [round(avg, 2), round(top, 2)] for name, (avg, top) in figures.items()}
        rows.append(_row(series, bucket, t, count, rolled))
    with ctx.db.write() as session:
        usage_history.insert_samples(session, rows)
    return len(rows)


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
