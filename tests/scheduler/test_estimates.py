"""Start estimates: Slurm's backfill estimate played on gpuyard's own placer."""

from __future__ import annotations

from factories.scheduler import make_pending, make_quota, make_running, make_server, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.estimates import estimate_starts
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig

NOW = 10_000.0
CONFIG = SchedulerConfig(preemption=False)


def estimates(
    snapshot: ClusterSnapshot,
    pending: list[PendingWorkload],
    declared: dict[str, float],
    config: SchedulerConfig = CONFIG,
) -> dict[str, float]:
    result = schedule_cycle(snapshot, pending, config, NOW)
    return estimate_starts(snapshot, pending, result, config, NOW, declared)


def test_a_waiting_workload_starts_when_the_work_in_its_way_declared_it_ends() -> None:
    snapshot = make_snapshot(
        [make_server("s1", gpus=8)],
        [
            make_running("a", "s1", gpus=range(4), started_at=NOW - 600),
            make_running("b", "s1", gpus=range(4, 8), started_at=NOW - 60),
        ],
    )
    big = make_pending("big", gpu=8, submitted_at=NOW - 5)
    half = make_pending("half", gpu=4, submitted_at=NOW - 1)

    found = estimates(snapshot, [big, half], {"a": 3600, "b": 3600, "big": 1800})

    # a ends at NOW+3000: 4 GPUs free, too few for big, enough for half, which starts
    # then and declared no end; b ends at NOW+3540, but half holds 4 GPUs: big never.
    assert found == {"half": NOW + 3000}


def test_the_head_of_the_queue_is_not_overtaken_when_both_fit_at_once() -> None:
    snapshot = make_snapshot(
        [make_server("s1", gpus=8)],
        [make_running("a", "s1", gpus=range(8), started_at=NOW - 100)],
    )
    first = make_pending("first", gpu=8, priority=4, submitted_at=NOW - 1)
    second = make_pending("second", gpu=8, priority=3, submitted_at=NOW - 100)

    found = estimates(snapshot, [first, second], {"a": 200, "first": 500})

    assert found == {"first": NOW + 100, "second": NOW + 600}


def test_work_without_a_declared_end_leaves_no_estimate() -> None:
    snapshot = make_snapshot(
        [make_server("s1", gpus=2)], [make_running("forever", "s1", gpus=[0, 1])]
    )
    assert estimates(snapshot, [make_pending("w", gpu=1)], {}) == {}


def test_a_request_no_server_could_ever_hold_gets_no_estimate() -> None:
    snapshot = make_snapshot(
        [make_server("s1", gpus=2)], [make_running("a", "s1", gpus=[0], started_at=NOW)]
    )
    found = estimates(snapshot, [make_pending("huge", gpu=16)], {"a": 10})
    assert found == {}


def test_a_team_at_its_quota_starts_when_its_own_work_ends() -> None:
    # Room on s2 the whole time; the team's quota (4 GPUs) is what waits, and its own
    # replica on s1 ending at NOW+50 frees it.
    running = [make_running("mine", "s1", gpus=range(4), started_at=NOW - 50, team="t")]
    snapshot = make_snapshot(
        [make_server("s1", gpus=4), make_server("s2", gpus=8)],
        running,
        [make_quota("t", gpu=4, used=running[0].resources)],
    )
    found = estimates(snapshot, [make_pending("next", gpu=4, team="t")], {"mine": 100})
    assert found == {"next": NOW + 50}


def test_a_workload_in_backoff_starts_when_its_backoff_ends() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=4)])
    back = make_pending("back", gpu=1, backoff_until=NOW + 30)
    other = make_running("x", "s1", gpus=[0], started_at=NOW)
    found = estimates(make_snapshot(snapshot.servers, [other]), [back], {"x": 5})
    assert found == {"back": NOW + 30}


def test_a_gang_starts_when_all_its_replicas_fit_at_once() -> None:
    running = [
        make_running("a", "s1", gpus=range(8), started_at=NOW),
        make_running("b", "s2", gpus=range(8), started_at=NOW),
    ]
    snapshot = make_snapshot([make_server("s1", gpus=8), make_server("s2", gpus=8)], running)
    gang = make_pending("gang", gpu=8, replicas=2, gang=True)
    found = estimates(snapshot, [gang], {"a": 100, "b": 400})
    assert found == {"gang": NOW + 400}


@settings(max_examples=80, deadline=None)
@given(
    durations=st.lists(st.integers(1, 5000), min_size=1, max_size=12),
    wants=st.lists(st.integers(1, 8), min_size=1, max_size=6),
)
def test_estimates_are_complete_at_release_times_and_never_oversubscribe(
    durations: list[int], wants: list[int]
) -> None:
    """With every end declared, every waiting workload that fits an empty server gets an
    estimate; each estimate is now or a time something ends; and at every estimate the
    GPUs of the work still running plus the workloads started by then fit the fleet."""
    servers = [make_server(f"s{i}", gpus=8) for i in range(2)]
    running = [
        make_running(f"r{i}", f"s{i % 2}", gpus=[i // 2], started_at=NOW)
        for i in range(len(durations))
    ]
    snapshot = make_snapshot(servers, running)
    pending = [
        make_pending(f"p{i}", gpu=gpu, submitted_at=NOW - 100 + i) for i, gpu in enumerate(wants)
    ]
    declared = {f"r{i}": float(d) for i, d in enumerate(durations)}
    declared.update({f"p{i}": 10_000.0 for i in range(len(wants))})
    result = schedule_cycle(snapshot, pending, CONFIG, NOW)
    found = estimate_starts(snapshot, pending, result, CONFIG, NOW, declared)
    started_now = {a.workload_id: NOW for a in result.admitted}

    assert set(found) | set(started_now) == {p.workload_id for p in pending}
    starts = {**found, **started_now}
    ends = {NOW + d for d in declared.values()} | {at + 10_000.0 for at in starts.values()}
    for at in found.values():
        assert at == NOW or at in ends
        held = sum(1 for r in running if NOW + declared[r.workload_id] > at)
        held += sum(
            wants[int(wid[1:])] for wid, start in starts.items() if start <= at < start + 10_000
        )
        assert held <= 16
