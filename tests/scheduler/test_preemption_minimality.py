"""Preemption picks the same server and victims as a brute-force search over all subsets."""

from __future__ import annotations

from itertools import combinations

from factories.scheduler import make_pending, make_server, make_snapshot, res
from hypothesis import event, given, settings, target
from hypothesis import strategies as st

from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    PendingWorkload,
    RunningReplica,
    SchedulerConfig,
    ServerView,
)

NOW = 1000.0


@st.composite
def instances(draw: st.DrawFn) -> tuple[ClusterSnapshot, PendingWorkload, float]:
    """1-4 servers packed device by device with up to 8 replicas each, and a preemptor."""
    servers: list[ServerView] = []
    running: list[RunningReplica] = []

    def add(server: ServerView, alloc: tuple[tuple[int, int], ...]) -> None:
        gpu = sum(m for _, m in alloc) / 1000
        running.append(
            RunningReplica(
                workload_id=f"r{len(running)}",
                replica=0,
                server_id=server.id,
                priority=draw(st.integers(1, 5)),
                preemptible=draw(st.sampled_from([True, True, True, False])),
                resources=res(draw(st.integers(1, 2)), draw(st.integers(1, 8)), 0, gpu),
                gpu_allocation=alloc,
                started_at=draw(st.one_of(st.none(), st.floats(0, NOW))),
            )
        )

    for s in range(draw(st.integers(1, 4))):
        server = make_server(f"s{s}", gpus=draw(st.sampled_from([2, 4, 8])), cpu=32, ram_gb=128)
        servers.append(server)
        first = len(running)
        device = 0
        while device < len(server.gpus) and len(running) - first < 8:
            kind = draw(st.sampled_from(["whole1", "whole2", "shares", "shares"] * 3 + ["free"]))
            if kind == "whole2" and device + 1 < len(server.gpus):
                add(server, ((device, 1000), (device + 1, 1000)))
                device += 2
                continue
            if kind == "shares" and len(running) - first < 7:
                first_share = draw(st.sampled_from([200, 300, 500]))
                add(server, ((device, first_share),))
                second = draw(st.sampled_from([1000 - first_share, 1000 - first_share, 100]))
                add(server, ((device, second),))
            elif kind != "free":
                add(server, ((device, 1000),))
            device += 1
    preemptor = make_pending(
        "hi",
        gpu=draw(st.sampled_from([1, 2, 2, 3, 3, 4, 0.5, 0.8])),
        cpu=draw(st.integers(1, 4)),
        ram_gb=draw(st.integers(1, 16)),
        priority=draw(st.integers(2, 5)),
    )
    min_runtime = draw(st.sampled_from([0.0, 300.0]))
    return make_snapshot(servers, running), preemptor, min_runtime


def _fits(server: ServerView, staying: list[RunningReplica], w: PendingWorkload) -> bool:
    """Independent fit check: totals, then whole free devices or room on one device."""
    used = [0, 0, 0, 0]
    devices = {g.index: 0 for g in server.gpus}
    for r in staying:
        used = [
            used[0] + r.resources.cpu_milli,
            used[1] + r.resources.ram_mib,
            used[2] + r.resources.storage_mib,
            used[3] + r.resources.gpu_milli,
        ]
        for index, milli in r.gpu_allocation:
            devices[index] += milli
    cap, want = server.capacity, w.resources
    if (
        used[0] + want.cpu_milli > cap.cpu_milli
        or used[1] + want.ram_mib > cap.ram_mib
        or used[2] + want.storage_mib > cap.storage_mib
        or used[3] + want.gpu_milli > cap.gpu_milli
    ):
        return False
    if want.gpu_milli >= 1000:
        return sum(1 for a in devices.values() if a == 0) >= want.gpu_milli // 1000
    if want.gpu_milli > 0:
        return any(a + want.gpu_milli <= 1000 for a in devices.values())
    return True


def brute_force(
    snapshot: ClusterSnapshot, w: PendingWorkload, min_runtime: float
) -> tuple[str, frozenset[str]] | None:
    """Per server the minimal set by (count, max priority, GPU, youngest, ids); then the
    server by (max priority, count, GPU, youngest, server id)."""
    best: tuple[int, int, int, float, str] | None = None
    answer: tuple[str, frozenset[str]] | None = None
    for server in snapshot.servers:
        mine = [r for r in snapshot.running if r.server_id == server.id]
        candidates = [
            r
            for r in mine
            if r.preemptible
            and r.priority < w.priority
            and not (r.started_at is not None and NOW - r.started_at < min_runtime)
        ]
        local: tuple[int, int, int, float, tuple[str, ...]] | None = None
        local_set: tuple[RunningReplica, ...] = ()
        for size in range(len(candidates) + 1):
            for subset in combinations(candidates, size):
                if not _fits(server, [r for r in mine if r not in subset], w):
                    continue
                oldest = min(
                    (NOW if r.started_at is None else r.started_at for r in subset), default=NOW
                )
                key = (
                    size,
                    max((r.priority for r in subset), default=0),
                    sum(r.resources.gpu_milli for r in subset),
                    -oldest,
                    tuple(sorted(r.workload_id for r in subset)),
                )
                if local is None or key < local:
                    local, local_set = key, subset
            if local is not None:
                break
        if local is None:
            continue
        size, top, gpu, young, _ = local
        server_key = (top, size, gpu, young, server.id)
        if best is None or server_key < best:
            best = server_key
            answer = (server.id, frozenset(r.workload_id for r in local_set))
    return answer


@settings(max_examples=200, deadline=None)
@given(instances())
def test_preemption_matches_brute_force(
    instance: tuple[ClusterSnapshot, PendingWorkload, float],
) -> None:
    snapshot, preemptor, min_runtime = instance
    config = SchedulerConfig(min_runtime_seconds=min_runtime, preemption_candidates=0)
    result = schedule_cycle(snapshot, [preemptor], config, now=NOW)
    expected = brute_force(snapshot, preemptor, min_runtime)
    event("no fit" if expected is None else f"{len(expected[1])} victims")
    target(0 if expected is None else len(expected[1]))
    if expected is None:
        assert not result.admitted
        return
    (admission,) = result.admitted
    server, victims = expected
    if not victims:
        assert admission.victims == ()  # it fits somewhere without evicting anything
        return
    assert {v.workload_id for v in admission.victims} == victims
    assert {v.server_id for v in admission.victims} == {server}
    assert [a.server_id for a in admission.assignments] == [server]
