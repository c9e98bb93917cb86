"""GPU memory requests (issue 21): a share that reserves memory only lands on a device
with that much free, is packed by the same scoring otherwise, may evict a lower-priority
share to get it, and waits with a reason that names memory when no device has room."""

from __future__ import annotations

from dataclasses import replace

import pytest
from factories.scheduler import make_pending, make_running, make_server, make_snapshot, placed_on
from factories.scheduler import pending_of as pending_decision

from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import PendingWorkload, RunningReplica, SchedulerConfig

GB = 1024


def memory(workload: PendingWorkload, gb: int) -> PendingWorkload:
    return replace(workload, resources=replace(workload.resources, gpu_memory_mib=gb * GB))


def holding(replica: RunningReplica, gb: int) -> RunningReplica:
    return replace(replica, resources=replace(replica.resources, gpu_memory_mib=gb * GB))


PROFILES = ["pack", "binpack", "spread", "fgd"]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_share_skips_the_device_whose_memory_is_taken(profile: str) -> None:
    # Device 0 has milli room but only 10 GB of memory left; device 1 is empty.
    server = make_server("s1", gpus=2)
    taken = holding(make_running("old", "s1", gpus=[0], share=0.2), 70)
    want = memory(make_pending("new", gpu=0.1), 20)
    result = schedule_cycle(
        make_snapshot([server], [taken]), [want], SchedulerConfig(profile=profile), now=100.0
    )
    assert placed_on(result, "new") == [("s1", ((1, 100),))]


@pytest.mark.parametrize("profile", PROFILES)
def test_without_memory_the_same_share_packs_onto_the_used_device(profile: str) -> None:
    server = make_server("s1", gpus=2)
    taken = holding(make_running("old", "s1", gpus=[0], share=0.2), 70)
    want = make_pending("new", gpu=0.1)
    result = schedule_cycle(
        make_snapshot([server], [taken]), [want], SchedulerConfig(profile=profile), now=100.0
    )
    assert placed_on(result, "new") == [("s1", ((0, 100),))]


def test_no_device_with_free_memory_waits_with_a_reason_naming_memory() -> None:
    server = make_server("s1", gpus=1)
    taken = holding(make_running("old", "s1", gpus=[0], share=0.1, priority=5), 60)
    want = memory(make_pending("new", gpu=0.1), 30)
    result = schedule_cycle(make_snapshot([server], [taken]), [want], SchedulerConfig(), now=100.0)
    waiting = pending_decision(result, "new")
    assert waiting is not None
    assert waiting.code is PendingCode.UNSCHEDULABLE
    assert "memory" in waiting.reason


def test_more_memory_than_any_device_has_is_unresolvable() -> None:
    server = make_server("s1", gpus=2, memory_gb=24)
    want = memory(make_pending("new", gpu=0.5), 40)
    result = schedule_cycle(make_snapshot([server]), [want], SchedulerConfig(), now=100.0)
    waiting = pending_decision(result, "new")
    assert waiting is not None
    assert waiting.code is PendingCode.UNRESOLVABLE
    assert "memory" in waiting.reason


def test_a_higher_priority_share_evicts_the_share_holding_the_memory() -> None:
    server = make_server("s1", gpus=1)
    low = holding(make_running("low", "s1", gpus=[0], share=0.1, priority=1), 70)
    high = memory(make_pending("high", gpu=0.1, priority=5), 20)
    result = schedule_cycle(make_snapshot([server], [low]), [high], SchedulerConfig(), now=100.0)
    (admission,) = result.admitted
    assert [v.workload_id for v in admission.victims] == ["low"]
    assert placed_on(result, "high") == [("s1", ((0, 100),))]


def test_replicas_of_one_workload_count_each_others_memory() -> None:
    server = make_server("s1", gpus=2)
    want = memory(make_pending("many", gpu=0.1, replicas=4), 30)
    result = schedule_cycle(make_snapshot([server]), [want], SchedulerConfig(), now=100.0)
    devices = [alloc[0][0] for _, alloc in placed_on(result, "many")]
    # 80 GB per device: two 30 GB replicas each, never three.
    assert sorted(devices) == [0, 0, 1, 1]
