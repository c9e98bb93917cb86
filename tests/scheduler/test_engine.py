"""The cycle: ordered iteration, gangs, no head-of-line blocking, pending reasons."""

from __future__ import annotations

import copy

import pytest
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
from gpuyard.scheduler.snapshot import PendingWorkload, SchedulerConfig, ServerView

CONFIG = SchedulerConfig()


def test_big_workload_does_not_block_smaller_ones_behind_it() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=4)])
    pending = [
        make_pending("big", gpu=8, priority=5, submitted_at=0),
        make_pending("small", gpu=1, priority=1, submitted_at=1),
    ]
    result = schedule_cycle(snapshot, pending, CONFIG, now=10)
    assert [a.workload_id for a in result.admitted] == ["small"]
    assert result.order == ("big", "small")


def test_decisions_in_one_cycle_account_for_each_other() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=8, gpu_used=[1000, 1000])])
    pending = [make_pending(f"w{i}", gpu=4, submitted_at=i) for i in range(2)]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert [a.workload_id for a in result.admitted] == ["w0"]
    assert placed_on(result, "w0") == [("s1", tuple((i, 1000) for i in range(2, 6)))]
    assert pending_of(result, "w1") is not None


def test_non_gang_places_what_fits_and_says_why_not_the_rest() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=2), make_server("s2", gpus=1)])
    workload = make_pending("w", gpu=1, replicas=5, first_replica=2)
    result = schedule_cycle(snapshot, [workload], CONFIG, now=0)
    (admission,) = result.admitted
    assert sorted(a.replica for a in admission.assignments) == [2, 3, 4]
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.code is PendingCode.UNSCHEDULABLE
    assert pending.reason.startswith("placed 3 of 5 replicas; 0/2 servers fit: ")


def test_gang_is_all_or_nothing() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=2), make_server("s2", gpus=1)])
    gang = make_pending("gang", gpu=1, replicas=4, gang=True, submitted_at=0)
    after = make_pending("after", gpu=2, submitted_at=1)
    result = schedule_cycle(snapshot, [gang, after], CONFIG, now=0)
    # The gang's partial placement was rolled back, so "after" can use s1.
    assert [a.workload_id for a in result.admitted] == ["after"]
    pending = pending_of(result, "gang")
    assert pending is not None
    assert pending.reason.startswith("gang of 4 starts all at once; only 3 fit; 0/2 servers fit")


def test_gang_spans_servers() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=2), make_server("s2", gpus=2)])
    result = schedule_cycle(
        snapshot, [make_pending("g", gpu=1, replicas=4, gang=True)], CONFIG, now=0
    )
    assert sorted(s for s, _ in placed_on(result, "g")) == ["s1", "s1", "s2", "s2"]


def test_backoff_keeps_a_workload_waiting() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=8)])
    pending = [make_pending("w", gpu=1, backoff_until=100)]
    early = schedule_cycle(snapshot, pending, CONFIG, now=60)
    assert not early.admitted
    waiting = pending_of(early, "w")
    assert waiting is not None
    assert waiting.code is PendingCode.BACKOFF
    assert waiting.reason == "preempted recently; back in the queue in 40 s"
    late = schedule_cycle(snapshot, pending, CONFIG, now=100)
    assert [a.workload_id for a in late.admitted] == ["w"]


def test_invalid_gpu_amount_is_unresolvable() -> None:
    result = schedule_cycle(
        make_snapshot([make_server(gpus=8)]), [make_pending("w", gpu=1.5)], CONFIG, now=0
    )
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.code is PendingCode.UNRESOLVABLE


def test_nothing_missing_means_no_decision() -> None:
    result = schedule_cycle(
        make_snapshot([make_server()]), [make_pending("w", replicas=0)], CONFIG, now=0
    )
    assert result.admitted == ()
    assert result.pending == ()
    assert result.order == ("w",)


def test_the_input_snapshot_is_not_mutated() -> None:
    servers = [make_server("s1", gpus=4, gpu_used=[500]), make_server("s2", gpus=8)]
    running = [make_running("low", "s2", gpus=list(range(8)), priority=1)]
    snapshot = make_snapshot(servers, running)
    pending = [make_pending("hi", gpu=8, priority=5), make_pending("s", gpu=0.5)]
    before = copy.deepcopy((snapshot, pending))
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert result.admitted  # it did decide something
    assert (snapshot, pending) == before, "Snapshot was modified"


GPU3 = [make_server("gpu-3", gpus=2, gpu_used=[1000])]
REASONS = [
    (
        "kube-style summary with the best candidate",
        [
            make_server("gpu-1", gpus=4, gpu_used=[1000] * 4),
            make_server("gpu-2", gpus=4, gpu_used=[1000] * 4),
            *GPU3,
            make_server("gpu-4", gpus=8, status="draining"),
        ],
        make_pending("w", gpu=2),
        PendingCode.UNSCHEDULABLE,
        "0/4 servers fit: 3 have too few free GPUs (needs 2, best server gpu-3 has 1 free), "
        "1 is draining",
    ),
    (
        "model named in the reason",
        [make_server("a", gpus=8, model="NVIDIA A100"), make_server("h", gpus=1)],
        make_pending("w", gpu=2, model="H100"),
        PendingCode.UNRESOLVABLE,
        "0/2 servers fit: 1 has no H100 GPUs, 1 has too few H100 GPUs (needs 2, largest server "
        "h has 1)",
    ),
    (
        "bigger than any server is unresolvable",
        [make_server("s1", cpu=8), make_server("s2", cpu=16)],
        make_pending("w", cpu=32),
        PendingCode.UNRESOLVABLE,
        "0/2 servers fit: 2 have too few CPUs (needs 32 cpu, largest server s2 has 16 cpu)",
    ),
    (
        "all servers draining is not unresolvable",
        [make_server("s1", status="draining"), make_server("s2", status="offline")],
        make_pending("w"),
        PendingCode.UNSCHEDULABLE,
        "0/2 servers fit: 1 is draining, 1 is offline",
    ),
    (
        "labels and clusters",
        [make_server("s1", cluster="c2"), make_server("s2", labels={"zone": "b"})],
        make_pending("w", cluster="c1", selector={"zone": "a"}),
        PendingCode.UNRESOLVABLE,
        "0/2 servers fit: 1 does not match labels zone=a, 1 is in another cluster",
    ),
    (
        "share room",
        [make_server("s1", gpus=2, gpu_used=[800, 700])],
        make_pending("w", gpu=0.5),
        PendingCode.UNSCHEDULABLE,
        "0/1 servers fit: 1 has no GPU with enough room (needs 0.5 GPU, best server s1 has "
        "0.3 GPU free)",
    ),
    (
        "no servers at all",
        [],
        make_pending("w"),
        PendingCode.UNSCHEDULABLE,
        "0/0 servers fit: no servers are registered",
    ),
]


@pytest.mark.parametrize(
    ("servers", "workload", "code", "reason"), [c[1:] for c in REASONS], ids=[c[0] for c in REASONS]
)
def test_pending_reasons(
    servers: list[ServerView], workload: PendingWorkload, code: PendingCode, reason: str
) -> None:
    config = SchedulerConfig(preemption=False)
    result = schedule_cycle(make_snapshot(servers), [workload], config, now=0)
    pending = pending_of(result, workload.workload_id)
    assert pending is not None
    assert (pending.code, pending.reason) == (code, reason)


def test_failed_preemption_is_mentioned() -> None:
    running = [make_running("r", "s1", gpus=[0], priority=5)]
    snapshot = make_snapshot([make_server("s1", gpus=1)], running)
    result = schedule_cycle(snapshot, [make_pending("w", gpu=1, priority=3)], CONFIG, now=0)
    pending = pending_of(result, "w")
    assert pending is not None
    assert pending.reason.endswith(
        "; no server frees enough room by evicting lower-priority preemptible work"
    )
