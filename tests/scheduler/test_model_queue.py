"""The queue's under-guarantee rule per GPU model: among equal priorities, work pinned to a
model its team has a per-model guarantee of goes first while the team holds less of that
model than the guarantee, whatever it holds in all, and does not jump ahead once it holds
the guarantee of the model, however far below its whole guarantee."""

from __future__ import annotations

from dataclasses import replace

from factories.scheduler import A100, H100, make_pending, make_running, make_server, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import QueueNode
from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.queue import fairshare_tree, order_queue
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload


def gpus(n: float) -> Resources:
    return Resources(gpu_milli=round(n * 1000))


def _order(snapshot: ClusterSnapshot, pending: list[PendingWorkload]) -> list[str]:
    return [w.workload_id for w in order_queue(pending, {}, fairshare_tree(snapshot, pending))]


def _fleet(running_a: list[tuple[str, int]]) -> ClusterSnapshot:
    """h: 8 H100, a: 8 A100; team z runs one GPU on each (server, device) given (z: it
    loses every tie on the team's name, so only the rule can put it first)."""
    running = [make_running(f"z-{s}{g}", s, gpus=[g], team="z") for s, g in running_a]
    return make_snapshot(
        [make_server("h", gpus=8, model=H100), make_server("a", gpus=8, model=A100)], running
    )


def test_pinned_work_under_its_model_guarantee_goes_first() -> None:
    """z holds its whole GPU guarantee (8) in A100s, none of its 4 guaranteed H100s: its
    H100 work goes before b's (which has no guarantee); its other work after."""
    snapshot = replace(
        _fleet([("a", g) for g in range(8)]),
        teams={
            "z": QueueNode("z", guarantee=gpus(8), gpu_models=(("H100", 4000),)),
            "b": QueueNode("b"),
        },
    )
    pending = [
        make_pending("b-any", gpu=1, team="b", submitted_at=0),
        make_pending("z-any", gpu=1, team="z", submitted_at=1),
        make_pending("z-h100", gpu=1, team="z", model="h100", submitted_at=2),
    ]
    assert _order(snapshot, pending[:1] + pending[2:]) == ["z-h100", "b-any"]
    assert _order(snapshot, pending[:2]) == ["b-any", "z-any"]


def test_a_team_at_its_model_guarantee_does_not_jump_ahead_for_that_model() -> None:
    """z holds 2 H100s, all its H100 guarantee, and is far below its GPU guarantee (8):
    its H100 work no longer goes first; its unpinned work still does."""
    snapshot = replace(
        _fleet([("h", 0), ("h", 1)]),
        teams={
            "z": QueueNode("z", guarantee=gpus(8), gpu_models=(("H100", 2000),)),
            "c": QueueNode("c", guarantee=gpus(4)),
            "b": QueueNode("b"),
        },
    )
    pinned = [
        make_pending("b-any", gpu=1, team="b", submitted_at=0),
        make_pending("z-h100", gpu=1, team="z", model="H100", submitted_at=1),
    ]
    assert _order(snapshot, pinned) == ["b-any", "z-h100"]
    unpinned = [pinned[0], make_pending("z-any", gpu=1, team="z", submitted_at=1)]
    assert _order(snapshot, unpinned) == ["z-any", "b-any"]
    # Alternatives are not pinned: the team's whole guarantee decides.
    either = [pinned[0], make_pending("z-either", gpu=1, team="z", model="H100|A100")]
    assert _order(snapshot, either) == ["z-either", "b-any"]


def test_what_the_queue_puts_ahead_counts_against_the_model_guarantee() -> None:
    """z is guaranteed 2 H100s and holds none: its first two H100 GPUs go first, then b."""
    snapshot = replace(
        _fleet([]),
        teams={
            "z": QueueNode("z", guarantee=gpus(2), gpu_models=(("H100", 2000),)),
            "b": QueueNode("b"),
        },
    )
    pending = [make_pending("b-any", gpu=1, team="b", submitted_at=0)] + [
        make_pending(f"z-h100-{i}", gpu=1, team="z", model="H100", submitted_at=1 + i)
        for i in range(3)
    ]
    assert _order(snapshot, pending)[:2] == ["z-h100-0", "z-h100-1"]


# -- the property -------------------------------------------------------------------------
TEAMS = ("t0", "t1", "t2", "t3")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[ClusterSnapshot, list[PendingWorkload]]:
    """Two H100 and two A100 servers with random one-GPU work of four teams (two in a
    department), random guarantees and per-model guarantees, and one pending workload per
    team at one priority, pinned to a model, to alternatives or to none."""
    servers = [make_server(f"s{i}", gpus=4, model=(H100, A100)[i % 2]) for i in range(4)]
    running = []
    for i, server in enumerate(servers):
        for g in range(4):
            team = draw(st.sampled_from((*TEAMS, None)))
            if team is not None:
                running.append(make_running(f"r{i}{g}", server.id, gpus=[g], team=team))
    nodes = [QueueNode("d")]
    for n, team in enumerate(TEAMS):
        total = draw(st.integers(0, 8))
        h100 = draw(st.integers(0, total))
        nodes.append(
            QueueNode(
                team,
                parent_id="d" if n < 2 else None,
                guarantee=gpus(total),
                gpu_models=(("H100", h100 * 1000),) if h100 else (),
                weight=draw(st.integers(1, 3)),
            )
        )
    pending = [
        make_pending(
            f"w-{team}",
            gpu=draw(st.integers(1, 2)),
            team=team,
            model=draw(st.sampled_from([None, "H100", "nvidia h100", "A100", "H100|A100"])),
            submitted_at=draw(st.integers(0, 100)),
        )
        for team in TEAMS
    ]
    snapshot = replace(make_snapshot(servers, running), teams={n.team_id: n for n in nodes})
    return snapshot, pending


def _under(snapshot: ClusterSnapshot, workload: PendingWorkload) -> bool:
    """The rule, worked out from the snapshot alone."""
    team = workload.team_id
    node = snapshot.teams[team or ""]
    mine = [r for r in snapshot.running if r.team_id == team]
    model = model_key(workload.gpu_model)
    guaranteed = {model_key(m): milli for m, milli in node.gpu_models}
    if model is not None and len(model) == 1 and model in guaranteed:
        devices = {(s.id, g.index): g.model for s in snapshot.servers for g in s.gpus}
        held = sum(
            milli
            for r in mine
            for index, milli in r.gpu_allocation
            if device_matches(model, devices[(r.server_id, index)])
        )
        return held < guaranteed[model]
    used = sum(r.resources.gpu_milli for r in mine)
    return node.guarantee.gpu_milli > 0 and used < node.guarantee.gpu_milli


@settings(max_examples=200, deadline=None)
@given(world=worlds())
def test_work_under_its_applicable_guarantee_is_always_first(
    world: tuple[ClusterSnapshot, list[PendingWorkload]],
) -> None:
    """One workload per team at one priority: every workload whose team is under the
    guarantee that applies to it (its model's when pinned to a guaranteed model, else the
    whole one) comes before every workload that is not."""
    snapshot, pending = world
    order = order_queue(pending, {}, fairshare_tree(snapshot, pending))
    flags = [_under(snapshot, w) for w in order]
    assert flags == sorted(flags, reverse=True), [
        (w.workload_id, f) for w, f in zip(order, flags, strict=True)
    ]
