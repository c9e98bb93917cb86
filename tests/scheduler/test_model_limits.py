"""Per-GPU-model limits in the engine: no placement, preemption or reclaim takes a team (or
its department, with its teams) past its limit of a model; work waits with a reason that
names the model limit; unpinned work goes to other models instead."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from factories.scheduler import (
    A100,
    H100,
    make_pending,
    make_running,
    make_server,
    make_snapshot,
    pending_of,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.fairshare import QueueNode
from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig

CONFIG = SchedulerConfig()
L4 = "NVIDIA L4"


def gpus(n: int) -> Resources:
    return Resources(gpu_milli=n * 1000)


def tree(*nodes: QueueNode) -> dict[str, QueueNode]:
    return {n.team_id: n for n in nodes}


def test_unpinned_work_goes_to_other_models_past_the_limit() -> None:
    snapshot = replace(
        make_snapshot([make_server("h", gpus=8, model=H100), make_server("a", gpus=2, model=A100)]),
        teams=tree(QueueNode("t", gpu_model_limits=(("H100", 3000),))),
    )
    pending = [make_pending(f"w{i}", gpu=1, team="t", submitted_at=i) for i in range(6)]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    servers = Counter(a.assignments[0].server_id for a in result.admitted)
    assert servers == {"h": 3, "a": 2}
    [waiting] = result.pending
    assert waiting.code is PendingCode.UNSCHEDULABLE
    assert "1 has GPUs at the team H100 limit 3/3 GPUs in use" in waiting.reason


def test_a_departments_own_pinned_work_counts_its_teams_holdings_of_the_model() -> None:
    """d may hold 2 H100s and its team t holds 2: d's own work pinned to H100 waits for
    quota, though d's own work holds none."""
    running = [make_running("r", "h", gpus=[0, 1], team="t")]
    snapshot = replace(
        make_snapshot([make_server("h", gpus=8, model=H100)], running),
        teams=tree(
            QueueNode("d", gpu_model_limits=(("H100", 2000),)), QueueNode("t", parent_id="d")
        ),
    )
    pending = [make_pending("w", gpu=1, team="d", model="H100")]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert not result.admitted
    waiting = pending_of(result, "w")
    assert waiting is not None
    assert waiting.code is PendingCode.QUOTA, waiting.reason


def test_unpinned_work_where_every_server_is_of_the_limited_model_waits_for_quota() -> None:
    running = [make_running("r", "h1", gpus=[0, 1], team="t")]
    snapshot = replace(
        make_snapshot(
            [make_server("h1", gpus=8, model=H100), make_server("h2", gpus=8, model=H100)],
            running,
        ),
        teams=tree(QueueNode("t", gpu_model_limits=(("H100", 2000),))),
    )
    result = schedule_cycle(snapshot, [make_pending("w", gpu=1, team="t")], CONFIG, now=0)
    waiting = pending_of(result, "w")
    assert waiting is not None
    assert waiting.code is PendingCode.QUOTA
    assert waiting.reason == "0/2 servers fit: 2 have GPUs at the team H100 limit 2/2 GPUs in use"
    assert waiting.reserved_server_id is None


def test_pinned_work_waits_with_a_quota_reason_naming_the_model_limit() -> None:
    running = [make_running(f"r{g}", "h", gpus=[g], team="t") for g in range(2)]
    snapshot = replace(
        make_snapshot([make_server("h", gpus=8, model=H100)], running),
        teams=tree(QueueNode("t", gpu_model_limits=(("H100", 2000),))),
    )
    pending = [make_pending("w", gpu=1, team="t", model="h100 80gb")]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert not result.admitted
    waiting = pending_of(result, "w")
    assert waiting is not None
    assert waiting.code is PendingCode.QUOTA
    assert waiting.reason == "team H100 limit exceeded: 2/2 GPUs in use, needs 1"


def test_a_department_limit_covers_its_teams_together() -> None:
    running = [make_running(f"r{g}", "h", gpus=[g], team="t1") for g in range(3)]
    snapshot = replace(
        make_snapshot([make_server("h", gpus=8, model=H100)], running),
        teams=tree(
            QueueNode("d", gpu_model_limits=(("H100", 4000),)),
            QueueNode("t1", parent_id="d"),
            QueueNode("t2", parent_id="d"),
            QueueNode("other"),
        ),
    )
    pending = [
        make_pending("gang", gpu=1, team="t2", model="H100", replicas=2, gang=True),
        make_pending("one", gpu=1, team="t2", model="H100", submitted_at=1),
        make_pending("free", gpu=4, team="other", model="H100", submitted_at=2),
    ]
    result = schedule_cycle(snapshot, pending, CONFIG, now=0)
    assert {a.workload_id for a in result.admitted} == {"one", "free"}
    gang = pending_of(result, "gang")
    assert gang is not None
    assert gang.code is PendingCode.QUOTA
    assert gang.reason == "department H100 limit exceeded: 3/4 GPUs in use, needs 2"


def test_neither_preemption_nor_reclaim_places_past_the_limit() -> None:
    """Team t (guarantee 4, H100 limit 2) holds 2 H100s; team o borrows the rest at
    priority 1; x runs its guarantee on every A100. t's urgent work could only go where o
    runs on H100s: it waits, pinned or not."""
    running = [make_running(f"t{g}", "h", gpus=[g], team="t", priority=3) for g in range(2)]
    running += [make_running(f"o{g}", "h", gpus=[g], team="o", priority=1) for g in range(2, 8)]
    running += [make_running(f"a{g}", "a", gpus=[g], team="x", priority=5) for g in range(4)]
    snapshot = replace(
        make_snapshot(
            [make_server("h", gpus=8, model=H100), make_server("a", gpus=4, model=A100)], running
        ),
        teams=tree(
            QueueNode("t", guarantee=gpus(4), gpu_model_limits=(("H100", 2000),)),
            QueueNode("o"),
            QueueNode("x", guarantee=gpus(4)),
        ),
    )
    for model in (None, "H100"):
        pending = [make_pending("w", gpu=1, team="t", priority=4, model=model)]
        result = schedule_cycle(snapshot, pending, CONFIG, now=1000)
        assert not result.admitted, model
        waiting = pending_of(result, "w")
        assert waiting is not None
        if model == "H100":
            assert waiting.code is PendingCode.QUOTA
            assert waiting.reason == "team H100 limit exceeded: 2/2 GPUs in use, needs 1"
        else:
            assert "at the team H100 limit 2/2 GPUs in use" in waiting.reason


def test_no_limit_no_change() -> None:
    """A limit on another model, or none at all, leaves decisions as they were."""
    snapshot = make_snapshot([make_server("h", gpus=8, model=H100)])
    pending = [make_pending(f"w{i}", gpu=2, team="t", submitted_at=i) for i in range(4)]
    plain = schedule_cycle(snapshot, pending, CONFIG, now=0)
    limited = schedule_cycle(
        replace(snapshot, teams=tree(QueueNode("t", gpu_model_limits=(("L4", 1000),)))),
        pending,
        CONFIG,
        now=0,
    )
    assert plain.admitted == limited.admitted
    assert len(plain.admitted) == 4


# -- the property -------------------------------------------------------------------------
MODELS = {"H100": H100, "A100": A100, "L4": L4}
TEAMS = ("t1", "t2", "t3", "solo")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[ClusterSnapshot, list[PendingWorkload]]:
    """A fleet of 2-5 servers of random models (some of two models), random running work
    of four teams (t1..t3 in department d) and random pinned and unpinned pending work,
    with random guarantees and per-model limits on teams and the department."""
    servers = []
    free: list[tuple[str, int]] = []
    for s in range(draw(st.integers(2, 5))):
        count = draw(st.integers(1, 8))
        first = draw(st.sampled_from(sorted(MODELS)))
        second = draw(st.sampled_from(sorted(MODELS)))
        split = draw(st.integers(0, count)) if draw(st.booleans()) else count
        models = [MODELS[first]] * split + [MODELS[second]] * (count - split)
        servers.append(make_server(f"s{s}", models=models))
        free += [(f"s{s}", g) for g in range(count)]
    running = []
    for i in range(draw(st.integers(0, len(free)))):
        server, gpu = free.pop(draw(st.integers(0, len(free) - 1)))
        running.append(
            make_running(
                f"r{i}",
                server,
                gpus=[gpu],
                team=draw(st.sampled_from(TEAMS)),
                priority=draw(st.integers(1, 5)),
            )
        )

    def limits() -> tuple[tuple[str, int], ...]:
        chosen = draw(st.lists(st.sampled_from(sorted(MODELS)), unique=True, max_size=2))
        return tuple((m, draw(st.integers(0, 6)) * 1000) for m in chosen)

    nodes = [QueueNode("d", gpu_model_limits=limits())]
    for team in TEAMS:
        nodes.append(
            QueueNode(
                team,
                parent_id=None if team == "solo" else "d",
                guarantee=gpus(draw(st.integers(0, 4))),
                gpu_model_limits=limits(),
            )
        )
    pending = []
    for i in range(draw(st.integers(1, 8))):
        replicas = draw(st.integers(1, 3))
        pending.append(
            make_pending(
                f"w{i}",
                gpu=draw(st.integers(1, 3)),
                team=draw(st.sampled_from(TEAMS)),
                model=draw(st.sampled_from([None, "H100", "A100", "L4", "H100|A100"])),
                priority=draw(st.integers(1, 5)),
                replicas=replicas,
                gang=replicas > 1 and draw(st.booleans()),
                submitted_at=i,
            )
        )
    snapshot = replace(make_snapshot(servers, running), teams=tree(*nodes))
    return snapshot, pending


def _held(snapshot: ClusterSnapshot, allocations: list[tuple[str | None, str, tuple]]) -> Counter:
    """Milli-GPUs per (tree node, limited model): each team's, and d's with its teams'."""
    device = {(s.id, g.index): g.model for s in snapshot.servers for g in s.gpus}
    out: Counter[tuple[str, str]] = Counter()
    for team, server, alloc in allocations:
        if team is None:
            continue
        for index, milli in alloc:
            for model in MODELS:
                if device_matches(model_key(model), device[(server, index)]):
                    out[(team, model)] += milli
                    if team != "solo":
                        out[("d", model)] += milli
    return out


@settings(max_examples=150, deadline=None)
@given(world=worlds())
def test_no_team_or_department_ever_exceeds_a_per_model_limit(
    world: tuple[ClusterSnapshot, list[PendingWorkload]],
) -> None:
    """Over random mixed fleets and work, with preemption and reclaim: after a cycle's
    evictions and placements, every team and the department hold at most their limit of
    each model (or no more than before, where they were past it already)."""
    snapshot, pending = world
    result = schedule_cycle(snapshot, pending, CONFIG, now=10_000)
    before = [(r.team_id, r.server_id, r.gpu_allocation) for r in snapshot.running]
    evicted = {(v.workload_id, v.replica) for a in result.admitted for v in a.victims}
    team_of = {p.workload_id: p.team_id for p in pending}
    after = [
        (r.team_id, r.server_id, r.gpu_allocation)
        for r in snapshot.running
        if (r.workload_id, r.replica) not in evicted
    ]
    after += [
        (team_of[a.workload_id], placed.server_id, placed.gpu_allocation)
        for a in result.admitted
        for placed in a.assignments
    ]
    event("with preemption" if evicted else "without preemption")
    held_before, held_after = _held(snapshot, before), _held(snapshot, after)
    for node in snapshot.teams.values():
        for model, limit in node.gpu_model_limits:
            slot = (node.team_id, model)
            assert held_after[slot] <= max(limit, held_before[slot]), (slot, limit)
