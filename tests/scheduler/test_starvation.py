"""Starvation guard: a long-waiting workload reserves its best server."""

from __future__ import annotations

from factories.scheduler import (
    make_pending,
    make_running,
    make_server,
    make_snapshot,
    pending_of,
    placed_on,
)

from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import ClusterSnapshot, SchedulerConfig

NOW = 10_000.0
CONFIG = SchedulerConfig(starvation_seconds=600, preemption=False)


def cluster() -> ClusterSnapshot:
    """s1 has 1 of 8 GPUs free, s2 has 6 of 8 free: neither fits an 8-GPU job."""
    running = [
        make_running("busy-1", "s1", gpus=list(range(7)), preemptible=False),
        make_running("busy-2", "s2", gpus=[0, 1], preemptible=False),
    ]
    return make_snapshot([make_server("s1", gpus=8), make_server("s2", gpus=8)], running)


def test_old_big_workload_reserves_the_server_needing_least_freed() -> None:
    big = make_pending("big", gpu=8, priority=4, submitted_at=NOW - 3600)
    small = [
        make_pending("small-a", gpu=1, priority=2, submitted_at=NOW - 10),
        make_pending("small-b", gpu=1, priority=2, submitted_at=NOW - 5),
    ]
    result = schedule_cycle(cluster(), [big, *small], CONFIG, now=NOW)

    held = pending_of(result, "big")
    assert held is not None
    assert held.reserved_server_id == "s2"  # 2 GPUs short, against 7 on s1
    assert "holds a reservation on s2 after waiting 60 min" in held.reason

    # Smaller, lower-priority work still starts elsewhere, but not on the reserved server.
    assert placed_on(result, "small-a") == [("s1", ((7, 1000),))]
    assert placed_on(result, "small-b") == []
    blocked = pending_of(result, "small-b")
    assert blocked is not None
    assert blocked.code is PendingCode.RESERVED
    assert "1 is reserved for a starving workload" in blocked.reason


def test_without_starvation_small_work_backfills() -> None:
    big = make_pending("big", gpu=8, priority=4, submitted_at=NOW - 60)  # not starving yet
    small = make_pending("small", gpu=1, priority=2, submitted_at=NOW - 10)
    other = make_pending("other", gpu=1, priority=2, submitted_at=NOW - 5)
    result = schedule_cycle(cluster(), [big, small, other], CONFIG, now=NOW)
    held = pending_of(result, "big")
    assert held is not None
    assert held.reserved_server_id is None
    assert sorted(s for w in ("small", "other") for s, _ in placed_on(result, w)) == ["s1", "s2"]


def test_higher_priority_work_may_use_a_reserved_server() -> None:
    big = make_pending("big", gpu=8, priority=3, submitted_at=NOW - 3600)
    urgent = make_pending("urgent", gpu=4, priority=5, submitted_at=NOW)
    filler = make_pending("filler", gpu=2, priority=3, submitted_at=NOW)
    result = schedule_cycle(cluster(), [big, urgent, filler], CONFIG, now=NOW)
    # "urgent" is ahead of "big" in the queue, so the reservation does not apply to it.
    assert [s for s, _ in placed_on(result, "urgent")] == ["s2"]
    # Equal priority but behind "big" in the queue: kept off the reserved server.
    assert placed_on(result, "filler") == []


def test_reservations_are_capped_per_cycle() -> None:
    starving = [
        make_pending(f"big-{i}", gpu=8, priority=4, submitted_at=NOW - 3600 + i) for i in range(2)
    ]
    config = SchedulerConfig(starvation_seconds=600, preemption=False, max_reservations=1)
    result = schedule_cycle(cluster(), starving, config, now=NOW)
    reserved = [p.reserved_server_id for p in result.pending]
    assert reserved == ["s2", None]


def test_unresolvable_workloads_reserve_nothing() -> None:
    huge = make_pending("huge", gpu=16, submitted_at=0)
    result = schedule_cycle(cluster(), [huge], CONFIG, now=NOW)
    pending = pending_of(result, "huge")
    assert pending is not None
    assert pending.code is PendingCode.UNRESOLVABLE
    assert pending.reserved_server_id is None
