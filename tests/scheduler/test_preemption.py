"""Preemption rules (DESIGN.md section 5) and the no-thrash regression."""

from __future__ import annotations

import pytest
from factories.scheduler import (
    make_pending,
    make_running,
    make_server,
    make_snapshot,
    pending_of,
    placed_on,
)

from gpuyard.scheduler import preemption
from gpuyard.scheduler.decisions import CycleResult, Pending, PendingCode
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    PendingWorkload,
    RunningReplica,
    SchedulerConfig,
    ServerView,
)

NOW = 1000.0
FAIL = Pending("missing", PendingCode.UNSCHEDULABLE, "no pending decision")


def victims(result: CycleResult) -> list[tuple[str, str]]:
    return sorted((v.workload_id, v.server_id) for a in result.admitted for v in a.victims)


def one_server(*running: RunningReplica, gpus: int = 4) -> ClusterSnapshot:
    return make_snapshot([make_server("s1", gpus=gpus)], running)


# (name, snapshot, preemptor, config, expected victims)
RULES = [
    (
        "strictly lower priority is evicted",
        one_server(make_running("low", gpus=[0, 1, 2, 3], priority=2)),
        make_pending("hi", gpu=4, priority=3),
        SchedulerConfig(),
        [("low", "s1")],
    ),
    (
        "equal priority is never evicted",
        one_server(make_running("peer", gpus=[0, 1, 2, 3], priority=3)),
        make_pending("hi", gpu=4, priority=3),
        SchedulerConfig(),
        [],
    ),
    (
        "non-preemptible is never evicted",
        one_server(make_running("pinned", gpus=[0, 1, 2, 3], priority=1, preemptible=False)),
        make_pending("hi", gpu=4, priority=5),
        SchedulerConfig(),
        [],
    ),
    (
        "freshly started victim is protected by min_runtime",
        one_server(make_running("fresh", gpus=[0, 1, 2, 3], priority=1, started_at=NOW - 30)),
        make_pending("hi", gpu=4, priority=5),
        SchedulerConfig(min_runtime_seconds=60),
        [],
    ),
    (
        "min_runtime edge: exactly min_runtime old is evictable",
        one_server(make_running("old", gpus=[0, 1, 2, 3], priority=1, started_at=NOW - 60)),
        make_pending("hi", gpu=4, priority=5),
        SchedulerConfig(min_runtime_seconds=60),
        [("old", "s1")],
    ),
    (
        "a victim not started yet is not protected",
        one_server(make_running("starting", gpus=[0, 1, 2, 3], priority=1, started_at=None)),
        make_pending("hi", gpu=4, priority=5),
        SchedulerConfig(min_runtime_seconds=60),
        [("starting", "s1")],
    ),
    (
        "never its own replicas, even with a stale lower priority",
        one_server(make_running("hi", gpus=[0, 1, 2, 3], priority=1)),
        make_pending("hi", gpu=4, priority=5, first_replica=1),
        SchedulerConfig(),
        [],
    ),
    (
        "preemption switched off",
        one_server(make_running("low", gpus=[0, 1, 2, 3], priority=1)),
        make_pending("hi", gpu=4, priority=5),
        SchedulerConfig(preemption=False),
        [],
    ),
    (
        "fewest victims: one big instead of two small",
        one_server(
            make_running("a", gpus=[0], priority=1),
            make_running("b", gpus=[1], priority=1),
            make_running("big", gpus=[2, 3], priority=2),
        ),
        make_pending("hi", gpu=2, priority=5),
        SchedulerConfig(),
        [("big", "s1")],
    ),
    (
        "slot constraint: two shares on different devices do not free a whole GPU",
        one_server(
            # 1 GPU of evictable shares, but on two devices shared with pinned work.
            make_running("s-a", gpus=[0], share=0.5, priority=1),
            make_running("pin-a", gpus=[0], share=0.5, priority=1, preemptible=False),
            make_running("s-b", gpus=[1], share=0.5, priority=1),
            make_running("pin-b", gpus=[1], share=0.5, priority=1, preemptible=False),
            make_running("whole", gpus=[2], priority=2),
            make_running("x", gpus=[3], priority=4, preemptible=False),
            gpus=4,
        ),
        make_pending("hi", gpu=1, priority=5),
        SchedulerConfig(),
        [("whole", "s1")],
    ),
]


@pytest.mark.parametrize(
    ("snapshot", "preemptor", "config", "expected"),
    [c[1:] for c in RULES],
    ids=[c[0] for c in RULES],
)
def test_preemption_rules(
    snapshot: ClusterSnapshot,
    preemptor: PendingWorkload,
    config: SchedulerConfig,
    expected: list[tuple[str, str]],
) -> None:
    result = schedule_cycle(snapshot, [preemptor], config, now=NOW)
    assert victims(result) == expected
    if expected:
        # The preemptor's assignment uses the freed room in the same admission.
        assert [a.workload_id for a in result.admitted] == [preemptor.workload_id]
    else:
        pending = pending_of(result, preemptor.workload_id)
        assert pending is not None
        assert pending.code is PendingCode.UNSCHEDULABLE


TWO_BY_2 = [make_server("s1", gpus=2), make_server("s2", gpus=2)]

# (name, servers, running, expected victims) for a 2-GPU preemptor of priority 5.
SERVER_CHOICE = [
    (
        "lowest highest-victim priority beats fewer victims",
        TWO_BY_2,
        [
            make_running("p3", "s1", gpus=[0, 1], priority=3),
            make_running("p1a", "s2", gpus=[0], priority=1),
            make_running("p1b", "s2", gpus=[1], priority=1),
        ],
        ["p1a", "p1b"],
    ),
    (
        "same priority: fewer victims",
        TWO_BY_2,
        [
            make_running("one", "s1", gpus=[0, 1], priority=2),
            make_running("two-a", "s2", gpus=[0], priority=2),
            make_running("two-b", "s2", gpus=[1], priority=2),
        ],
        ["one"],
    ),
    (
        "then least evicted GPU",
        [make_server("s1", gpus=2), make_server("s2", gpus=3)],
        [
            make_running("small", "s1", gpus=[0, 1], priority=2),
            make_running("large", "s2", gpus=[0, 1, 2], priority=2),
        ],
        ["small"],
    ),
    (
        "then the youngest victim",
        TWO_BY_2,
        [
            make_running("old", "s1", gpus=[0, 1], priority=2, started_at=10),
            make_running("young", "s2", gpus=[0, 1], priority=2, started_at=500),
        ],
        ["young"],
    ),
    (
        "then server id",
        TWO_BY_2,
        [
            make_running("on-s2", "s2", gpus=[0, 1], priority=2),
            make_running("on-s1", "s1", gpus=[0, 1], priority=2),
        ],
        ["on-s1"],
    ),
]


@pytest.mark.parametrize(
    ("servers", "running", "expected"),
    [c[1:] for c in SERVER_CHOICE],
    ids=[c[0] for c in SERVER_CHOICE],
)
def test_server_choice(
    servers: list[ServerView], running: list[RunningReplica], expected: list[str]
) -> None:
    snapshot = make_snapshot(servers, running)
    preemptor = make_pending("hi", gpu=2, priority=5)
    result = schedule_cycle(snapshot, [preemptor], SchedulerConfig(), now=NOW)
    assert sorted(v for v, _ in victims(result)) == sorted(expected)


def test_gang_preempts_on_one_server_when_one_can_hold_it_else_across_servers() -> None:
    running = [
        make_running("low-1", "s1", gpus=[0, 1], priority=1),
        make_running("low-2", "s2", gpus=[0, 1], priority=1),
    ]
    snapshot = make_snapshot([make_server("s1", gpus=2), make_server("s2", gpus=2)], running)
    gang = make_pending("gang", gpu=2, replicas=2, gang=True, priority=5)
    result = schedule_cycle(snapshot, [gang], SchedulerConfig(), now=NOW)
    assert victims(result) == [("low-1", "s1"), ("low-2", "s2")]
    assert len(result.admitted) == 1  # one admission: one transaction, all or nothing
    assert sorted((a.replica, a.server_id) for a in result.admitted[0].assignments) in (
        [(0, "s1"), (1, "s2")],
        [(0, "s2"), (1, "s1")],
    )

    snapshot = make_snapshot(
        [make_server("s1", gpus=4)],
        [
            make_running("low-1", "s1", gpus=[0, 1], priority=1),
            make_running("low-2", "s1", gpus=[2, 3], priority=1, replica=1),
        ],
    )
    result = schedule_cycle(snapshot, [gang], SchedulerConfig(), now=NOW)
    assert victims(result) == [("low-1", "s1"), ("low-2", "s1")]
    assert sorted(a.replica for a in result.admitted[0].assignments) == [0, 1]


def test_no_thrash_victims_never_take_the_freed_room() -> None:
    """Regression: victims (and their peers) refilled capacity freed for the preemptor."""
    server = make_server("s1", gpus=8)
    running = [make_running("v", "s1", gpus=list(range(8)), priority=1)]
    pending = [
        make_pending("hi", gpu=4, priority=5, submitted_at=5),
        make_pending("v", gpu=4, priority=1, replicas=1, first_replica=1, submitted_at=0),
        make_pending("peer", gpu=4, priority=1, submitted_at=1),
    ]
    config = SchedulerConfig()

    # Cycle 1: hi evicts v; neither v nor its low-priority peers use the 4 GPUs left over.
    first = schedule_cycle(make_snapshot([server], running), pending, config, now=NOW)
    assert victims(first) == [("v", "s1")]
    assert [a.workload_id for a in first.admitted] == ["hi"]
    hi_alloc = placed_on(first, "hi")[0][1]
    for name in ("v", "peer"):
        waiting = pending_of(first, name)
        assert waiting is not None, name
    v_wait = pending_of(first, "v")
    assert v_wait is not None
    assert v_wait.code is PendingCode.BACKOFF

    # Apply: hi holds its GPUs; v goes back to pending (both replicas) with a backoff.
    hi = make_running("hi", "s1", gpus=[i for i, _ in hi_alloc], priority=5, started_at=None)
    after = make_snapshot([server], [hi])
    v_back = make_pending("v", gpu=4, priority=1, replicas=2, backoff_until=NOW + 10)
    peer = make_pending("peer", gpu=4, priority=1, submitted_at=1)

    # Cycle 2: v still backs off; hi keeps its GPUs; only the unrelated peer may start.
    second = schedule_cycle(after, [v_back, peer], config, now=NOW + 1)
    assert placed_on(second, "v") == []
    assert not victims(second)
    peer_devices = {i for _, alloc in placed_on(second, "peer") for i, _ in alloc}
    assert not peer_devices & {i for i, _ in hi_alloc}

    # Cycle 3, backoff over: v cannot evict hi (higher priority) and does not get its GPUs.
    third = schedule_cycle(after, [v_back], config, now=NOW + 20)
    v_devices = {i for _, alloc in placed_on(third, "v") for i, _ in alloc}
    assert not v_devices & {i for i, _ in hi_alloc}
    assert not victims(third)


def test_victims_are_not_chosen_twice_and_leftover_room_serves_more_important_work() -> None:
    running = [
        make_running("low-1", "s1", gpus=[0, 1, 2, 3], priority=1),
        make_running("low-2", "s2", gpus=[0, 1, 2, 3], priority=1),
    ]
    snapshot = make_snapshot([make_server("s1", gpus=4), make_server("s2", gpus=4)], running)
    pending = [
        make_pending("hi-a", gpu=2, priority=5, submitted_at=NOW),
        make_pending("hi-b", gpu=1, priority=4, submitted_at=NOW),
        make_pending("peer", gpu=1, priority=1, submitted_at=NOW),
    ]
    result = schedule_cycle(snapshot, pending, SchedulerConfig(), now=NOW)
    # One eviction serves both preemptors: hi-b takes what hi-a left on s1.
    assert victims(result) == [("low-1", "s1")]
    assert [s for s, _ in placed_on(result, "hi-a")] == ["s1"]
    assert [s for s, _ in placed_on(result, "hi-b")] == ["s1"]
    # The victims' peer (same priority as the victim) does not get the GPU left over.
    assert placed_on(result, "peer") == []
    assert "1 is held for a preemptor" in (pending_of(result, "peer") or FAIL).reason


def test_three_small_victims_when_nothing_smaller_frees_the_room() -> None:
    running = [
        make_running(f"v{i}", "s1", gpus=[i], priority=1 + (i % 2), started_at=100 * i)
        for i in range(4)
    ]
    snapshot = make_snapshot([make_server("s1", gpus=4)], running)
    result = schedule_cycle(
        snapshot, [make_pending("hi", gpu=3, priority=5)], SchedulerConfig(), now=NOW
    )
    # Any 3 of 4 work; lowest highest priority is 2 either way (v1, v3 have priority 2), so
    # the set that leaves the oldest victim (v0, started at 0) running wins.
    assert sorted(v for v, _ in victims(result)) == ["v1", "v2", "v3"]


def test_search_cap_falls_back_to_a_greedy_set_that_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preemption, "MAX_CHECKS", 1)
    running = [make_running(f"v{i}", "s1", gpus=[i], priority=1) for i in range(4)]
    snapshot = make_snapshot([make_server("s1", gpus=4)], running)
    result = schedule_cycle(
        snapshot, [make_pending("hi", gpu=2, priority=5)], SchedulerConfig(), now=NOW
    )
    (admission,) = result.admitted
    assert len(admission.victims) == 2  # greedy then reprieve keeps it minimal here
    freed = {i for v in admission.victims for i in (int(v.workload_id[1:]),)}
    assert {i for a in admission.assignments for i, _ in a.gpu_allocation} == freed
