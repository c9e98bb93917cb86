"""Gang preemption across servers: minimal victims over several servers, all or nothing."""

from __future__ import annotations

from itertools import combinations

from factories.scheduler import (
    make_pending,
    make_running,
    make_server,
    make_snapshot,
    pending_of,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import RunningReplica, SchedulerConfig

NOW = 10_000.0
CONFIG = SchedulerConfig()


def victims(result: object) -> list[tuple[str, str]]:
    return sorted(
        (v.workload_id, v.server_id)
        for a in result.admitted  # type: ignore[attr-defined]
        for v in a.victims
    )


def test_the_lowest_priority_victims_win_over_fewer_victims_of_higher_priority() -> None:
    running = [
        make_running("one-p1", "s1", gpus=range(4), priority=1),
        make_running("two-p1-a", "s2", gpus=[0, 1], priority=1),
        make_running("two-p1-b", "s2", gpus=[2, 3], priority=1),
        make_running("one-p2", "s3", gpus=range(4), priority=2),
    ]
    servers = [make_server(s, gpus=4) for s in ("s1", "s2", "s3")]
    gang = make_pending("gang", gpu=4, replicas=2, gang=True, priority=5)

    result = schedule_cycle(make_snapshot(servers, running), [gang], CONFIG, NOW)

    assert victims(result) == [("one-p1", "s1"), ("two-p1-a", "s2"), ("two-p1-b", "s2")]
    (admission,) = result.admitted
    assert sorted(a.server_id for a in admission.assignments) == ["s1", "s2"]


def test_free_room_is_used_before_anything_is_evicted() -> None:
    running = [
        make_running("low-a", "s1", gpus=range(4), priority=1),
        make_running("low-b", "s2", gpus=range(4), priority=1),
    ]
    servers = [make_server("s1", gpus=4), make_server("s2", gpus=4), make_server("s3", gpus=4)]
    gang = make_pending("gang", gpu=4, replicas=2, gang=True, priority=5)

    result = schedule_cycle(make_snapshot(servers, running), [gang], CONFIG, NOW)

    assert len(victims(result)) == 1
    (admission,) = result.admitted
    assert "s3" in {a.server_id for a in admission.assignments}


def test_a_gang_that_cannot_be_placed_whole_evicts_nobody() -> None:
    running = [
        make_running("low-a", "s1", gpus=range(4), priority=1),
        make_running("keep", "s2", gpus=range(4), priority=1, preemptible=False),
        make_running("low-c", "s3", gpus=range(4), priority=1),
    ]
    servers = [make_server(s, gpus=4) for s in ("s1", "s2", "s3")]
    gang = make_pending("gang", gpu=4, replicas=3, gang=True, priority=5)

    result = schedule_cycle(make_snapshot(servers, running), [gang], CONFIG, NOW)

    assert result.admitted == ()
    waiting = pending_of(result, "gang")
    assert waiting is not None
    assert "on one server or spread over several" in waiting.reason


def _cost(chosen: list[RunningReplica]) -> tuple[int, int, int]:
    return (
        max(r.priority for r in chosen),
        len(chosen),
        sum(r.resources.gpu_milli for r in chosen),
    )


@settings(max_examples=150, deadline=None)
@given(
    layout=st.lists(  # per server: the GPU counts and priorities of what runs there
        st.lists(st.tuples(st.integers(1, 2), st.integers(1, 3)), max_size=3),
        min_size=2,
        max_size=3,
    ),
    per_replica=st.integers(2, 4),
    replicas=st.integers(2, 3),
)
def test_a_spread_preemption_is_as_cheap_as_the_cheapest_set_brute_force_finds(
    layout: list[list[tuple[int, int]]], per_replica: int, replicas: int
) -> None:
    """Where no single server can hold the gang, the victims chosen over several servers
    cost (highest priority, count, GPU milli) no more than the cheapest set of victims that
    lets every replica fit (searched over every subset), and nothing is evicted when no
    set does."""
    servers = [make_server(f"s{i}", gpus=4) for i in range(len(layout))]
    running: list[RunningReplica] = []
    for i, jobs in enumerate(layout):
        first = 0
        for j, (gpus, priority) in enumerate(jobs):
            if first + gpus > 4:
                break
            running.append(
                make_running(
                    f"w{i}-{j}", f"s{i}", gpus=range(first, first + gpus), priority=priority
                )
            )
            first += gpus
    snapshot = make_snapshot(servers, running)
    gang = make_pending("gang", gpu=per_replica, replicas=replicas, gang=True, priority=5)

    def fits(evicted: set[str]) -> tuple[bool, bool]:
        """(fits over the servers, fits on one server) once ``evicted`` are gone."""
        free = []
        for i in range(len(layout)):
            held = sum(
                r.resources.gpu_milli // 1000
                for r in running
                if r.server_id == f"s{i}" and r.workload_id not in evicted
            )
            free.append(4 - held)
        return (
            sum(f // per_replica for f in free) >= replicas,
            any(f // per_replica >= replicas for f in free),
        )

    best: tuple[int, int, int] | None = None
    one_server = fits(set())[1]
    for size in range(1, len(running) + 1):
        for combo in combinations(running, size):
            spread, single = fits({r.workload_id for r in combo})
            one_server = one_server or single
            if spread and (best is None or _cost(list(combo)) < best):
                best = _cost(list(combo))

    result = schedule_cycle(snapshot, [gang], CONFIG, NOW)

    if fits(set())[0] or one_server:
        event("placed without evicting, or on one server")
        return
    if best is None:
        event("no set of victims makes room")
        assert result.admitted == ()
        return
    event("spread over servers")
    (admission,) = result.admitted
    chosen = [r for r in running if (r.workload_id, r.server_id) in victims(result)]
    # Highest victim priority and the number of victims are exact; the evicted GPU milli is
    # only each server's own tie-break (victims_key puts its own highest priority before
    # milli), so a spread can evict more milli than the cheapest set (module doc).
    assert _cost(chosen)[:2] == best[:2]
    assert _cost(chosen)[2] >= best[2]
    assert len(admission.assignments) == replicas
