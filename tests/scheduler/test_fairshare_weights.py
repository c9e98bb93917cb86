"""Over-quota weights per resource and per GPU model (issue 21): a team's claim on idle
capacity may differ per dimension, and per GPU model, where the model's devices are then
divided apart and order the work pinned to that model."""

from __future__ import annotations

from dataclasses import replace

from factories.scheduler import A100, H100, make_pending, make_running, make_server, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import FairShareTree, QueueNode
from gpuyard.scheduler.gpu_match import model_key
from gpuyard.scheduler.queue import fairshare_tree, order_queue
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload

H = model_key("H100")
FLEET = Resources(cpu_milli=100_000, ram_mib=100_000, storage_mib=100_000, gpu_milli=16_000)
UNBOUNDED = Resources(cpu_milli=10**9, ram_mib=10**9, storage_mib=10**9, gpu_milli=10**9)


def test_a_resource_weight_divides_only_its_dimension() -> None:
    """a weighs GPUs 3 (its other resources 1), b weighs everything 1; both want all:
    the GPUs split 3:1, every other resource 1:1."""
    tree = FairShareTree(
        [
            QueueNode("a", weights=(1.0, 1.0, 1.0, 3.0), pending=UNBOUNDED),
            QueueNode("b", pending=UNBOUNDED),
        ],
        FLEET,
    )
    assert tree.fair["a"] == (50_000, 50_000, 50_000, 12_000)
    assert tree.fair["b"] == (50_000, 50_000, 50_000, 4_000)
    assert tree.share("a").weights == (1.0, 1.0, 1.0, 3.0)
    assert tree.share("b").weights == (1.0, 1.0, 1.0, 1.0)


def test_the_dominant_share_divides_each_dimension_by_its_weight() -> None:
    """a holds 25% of the CPU and 50% of the GPUs: by one weight of 2 its dominant share
    is 0.25; weighing GPUs 4 and CPU 1, the CPU dominates at 0.25 / 1."""
    used = Resources(cpu_milli=25_000, gpu_milli=8_000)
    one = FairShareTree([QueueNode("a", weight=2.0, used=used)], FLEET)
    assert one.dominant_share("a") == 0.25
    apart = FairShareTree([QueueNode("a", weights=(1.0, 1.0, 1.0, 4.0), used=used)], FLEET)
    assert apart.dominant_share("a") == 0.25
    gpu_heavy = FairShareTree([QueueNode("a", weights=(4.0, 1.0, 1.0, 1.0), used=used)], FLEET)
    assert gpu_heavy.dominant_share("a") == 0.5


def _fleet(running: list[tuple[str, str, int]]) -> ClusterSnapshot:
    """h: 8 H100, a: 8 A100; ``running``: (team, server, device) holding one GPU each."""
    return make_snapshot(
        [make_server("h", gpus=8, model=H100), make_server("a", gpus=8, model=A100)],
        [make_running(f"{t}-{s}{g}", s, gpus=[g], team=t) for t, s, g in running],
    )


def _order(snapshot: ClusterSnapshot, pending: list[PendingWorkload]) -> list[str]:
    return [w.workload_id for w in order_queue(pending, {}, fairshare_tree(snapshot, pending))]


def _backlog(team: str, n: int, model: str | None = "H100", at: int = 0) -> list[PendingWorkload]:
    return [
        make_pending(f"{team}-{i}", gpu=1, team=team, model=model, submitted_at=at + i)
        for i in range(n)
    ]


def test_a_model_weight_divides_that_models_devices() -> None:
    """Both teams want every H100; a weighs H100 3: its fair share of the model is 6 of
    the 8, b's 2, and neither's GPU share (of all 16 GPUs) moves."""
    snapshot = replace(
        _fleet([]),
        teams={"a": QueueNode("a", gpu_model_weights=(("H100", 3.0),)), "b": QueueNode("b")},
    )
    pending = _backlog("a", 8) + _backlog("b", 8)
    tree = fairshare_tree(snapshot, pending)
    assert tree is not None
    assert tree.model_fair_share("a", H) == 6000
    assert tree.model_fair_share("b", H) == 2000
    assert tree.model_fair_share("a", model_key("A100")) is None  # nobody weighs it
    assert tree.fair["a"][3] == tree.fair["b"][3] == 8000


def test_work_pinned_to_a_weighted_model_is_queued_by_that_models_share() -> None:
    """a holds 4 H100s, b 2, both want 8 more. By the GPU dimension alone (fair 8 each of
    16) b is further below its share and goes first; with a weighing H100 3 (fair 6 vs 2
    of the 8 H100s) a is further below its share of the model and goes first. Unpinned
    work keeps the GPU dimension's order."""
    running = [("a", "h", g) for g in range(4)] + [("b", "h", g) for g in (4, 5)]
    pending = _backlog("a", 8) + _backlog("b", 8)
    plain = replace(_fleet(running), teams={"a": QueueNode("a"), "b": QueueNode("b")})
    assert _order(plain, pending)[0] == "b-0"
    weighted = replace(
        plain,
        teams={"a": QueueNode("a", gpu_model_weights=(("H100", 3.0),)), "b": QueueNode("b")},
    )
    assert _order(weighted, pending)[0] == "a-0"
    unpinned = [replace(w, gpu_model=None) for w in pending]
    assert _order(weighted, unpinned)[0] == "b-0"


# -- properties -----------------------------------------------------------------------------
TEAMS = ("t0", "t1", "t2", "t3")


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(1, 9), min_size=4, max_size=4),
    demand=st.lists(st.integers(0, 12), min_size=4, max_size=4),
    limits=st.lists(st.one_of(st.none(), st.integers(0, 8)), min_size=4, max_size=4),
)
def test_model_fair_shares_are_weighted_max_min(
    weights: list[int], demand: list[int], limits: list[int | None]
) -> None:
    """Over 8 H100s, four top-level teams with random weights of the model, demands of
    work pinned to it and limits of it: the division uses every device it can (all of
    them, or every team's capped demand), gives no team more than its demand or its limit,
    and any two teams it leaves wanting have equal shares per unit of weight."""
    teams = {
        t: QueueNode(
            t,
            gpu_model_weights=(("H100", float(w)),),
            gpu_model_limits=(("H100", lim * 1000),) if lim is not None else (),
        )
        for t, w, lim in zip(TEAMS, weights, limits, strict=True)
    }
    snapshot = replace(_fleet([]), teams=teams)
    pending = [w for t, n in zip(TEAMS, demand, strict=True) for w in _backlog(t, n)]
    tree = fairshare_tree(snapshot, pending)
    assert tree is not None
    shares = {t: tree.model_fair_share(t, H) or 0.0 for t in TEAMS}
    caps = {
        t: min(n, lim if lim is not None else n) * 1000.0
        for t, n, lim in zip(TEAMS, demand, limits, strict=True)
    }
    assert abs(sum(shares.values()) - min(8000.0, sum(caps.values()))) < 1e-6
    for t in TEAMS:
        assert shares[t] <= caps[t] + 1e-6
    wanting = [t for t in TEAMS if shares[t] < caps[t] - 1e-6]
    per_weight = {t: shares[t] / weights[TEAMS.index(t)] for t in wanting}
    if per_weight:
        assert max(per_weight.values()) - min(per_weight.values()) < 1e-6


@settings(max_examples=40, deadline=None)
@given(weights=st.lists(st.integers(1, 4), min_size=2, max_size=4))
def test_progressive_filling_admits_the_model_in_proportion_to_weights(
    weights: list[int],
) -> None:
    """Teams with endless backlogs pinned to H100 (8 devices, none held) and random
    weights of the model: in the first 8 workloads the queue puts forward, no team got
    its last one while it was further above its weighted share than another team ends
    (``(taken_i - 1) / w_i <= taken_j / w_j``: progressive filling by weight)."""
    names = TEAMS[: len(weights)]
    teams = {
        t: QueueNode(t, gpu_model_weights=(("H100", float(w)),))
        for t, w in zip(names, weights, strict=True)
    }
    snapshot = replace(_fleet([]), teams=teams)
    pending = [w for t in names for w in _backlog(t, 8)]
    first = _order(snapshot, pending)[:8]
    taken = {t: sum(1 for w in first if w.startswith(f"{t}-")) for t in names}
    weight = dict(zip(names, weights, strict=True))
    for i in names:
        for j in names:
            if taken[i] > 0:
                assert (taken[i] - 1) / weight[i] <= taken[j] / weight[j] + 1e-9, (taken, weight)
