"""Hierarchical quotas, borrowing/reclaim and DRF order (scheduler/fairshare.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import (
    FairShareTree,
    QueueNode,
    TreeError,
    jain_index,
    validate_tree,
)


def gpus(n: float) -> Resources:
    return Resources(gpu_milli=int(n * 1000))


FLEET = gpus(16)


# -- tree validation -----------------------------------------------------------------------
def test_cycle_is_refused() -> None:
    with pytest.raises(TreeError, match="own ancestor"):
        validate_tree({"a": "b", "b": "a"})


def test_self_parent_is_refused() -> None:
    with pytest.raises(TreeError, match="own ancestor"):
        validate_tree({"a": "a"})


def test_three_levels_are_refused() -> None:
    with pytest.raises(TreeError, match="3 levels deep"):
        validate_tree({"org": None, "dept": "org", "team": "dept"})


def test_unknown_parent_is_refused() -> None:
    with pytest.raises(TreeError, match="does not exist"):
        validate_tree({"team": "ghost"})


def test_two_levels_are_accepted() -> None:
    validate_tree({"dept": None, "a": "dept", "b": "dept", "solo": None})


# -- fair shares ---------------------------------------------------------------------------
def test_idle_guarantee_is_lent_and_weights_split_the_rest() -> None:
    tree = FairShareTree(
        [
            QueueNode("a", guarantee=gpus(8), weight=1, pending=gpus(16)),
            QueueNode("b", guarantee=gpus(8), weight=3, pending=gpus(16)),
            QueueNode("idle", guarantee=gpus(0), weight=1),
        ],
        FLEET,
    )
    assert tree.share("a").fair_share[3] == pytest.approx(8000)
    assert tree.share("b").fair_share[3] == pytest.approx(8000)
    tree = FairShareTree(
        [
            QueueNode("a", guarantee=gpus(4), weight=1, pending=gpus(16)),
            QueueNode("b", guarantee=gpus(4), weight=3, pending=gpus(16)),
            QueueNode("idle", guarantee=gpus(8)),
        ],
        FLEET,
    )
    # idle's 8 GPUs are lent 1:3.
    assert tree.share("a").fair_share[3] == pytest.approx(6000)
    assert tree.share("b").fair_share[3] == pytest.approx(10000)
    assert tree.share("idle").fair_share[3] == pytest.approx(0)


def test_department_share_is_divided_among_its_teams() -> None:
    tree = FairShareTree(
        [
            QueueNode("dept", guarantee=gpus(12)),
            QueueNode("a", parent_id="dept", guarantee=gpus(2), pending=gpus(16)),
            QueueNode("b", parent_id="dept", guarantee=gpus(2), pending=gpus(16)),
            QueueNode("other", guarantee=gpus(4), pending=gpus(16)),
        ],
        FLEET,
    )
    assert tree.share("dept").fair_share[3] == pytest.approx(12000)
    assert tree.share("other").fair_share[3] == pytest.approx(4000)
    assert tree.share("a").fair_share[3] == pytest.approx(6000)
    assert tree.share("dept").demand[3] == pytest.approx(32000)


def test_limit_caps_borrowing() -> None:
    tree = FairShareTree(
        [
            QueueNode("a", guarantee=gpus(2), limit=(None, None, None, 4000), pending=gpus(16)),
            QueueNode("b", guarantee=gpus(2), pending=gpus(16)),
        ],
        FLEET,
    )
    assert tree.share("a").fair_share[3] == pytest.approx(4000)
    assert tree.share("b").fair_share[3] == pytest.approx(12000)
    assert not tree.within_limits("a", gpus(5))


def test_borrowed_is_use_above_guarantee() -> None:
    tree = FairShareTree([QueueNode("a", guarantee=gpus(4), used=gpus(10))], FLEET)
    assert tree.share("a").borrowed[3] == pytest.approx(6000)


def test_jain_index_bounds() -> None:
    assert jain_index([1, 1, 1, 1]) == pytest.approx(1.0)
    assert jain_index([1, 0, 0, 0]) == pytest.approx(0.25)
    assert jain_index([]) == 1.0


# -- properties ----------------------------------------------------------------------------
teams_st = st.lists(
    st.tuples(
        st.integers(0, 8),  # guarantee (GPUs)
        st.one_of(st.none(), st.integers(0, 16)),  # limit (GPUs)
        st.integers(1, 4),  # weight
        st.integers(0, 16),  # demand (GPUs)
    ),
    min_size=2,
    max_size=5,
)


def _tree(spec: list[tuple[int, int | None, int, int]], used: list[int], cap: int) -> FairShareTree:
    return FairShareTree(
        [
            QueueNode(
                f"t{i}",
                guarantee=gpus(g),
                limit=(None, None, None, None if lim is None else lim * 1000),
                weight=w,
                used=gpus(used[i]),
                pending=gpus(max(0, d - used[i])),
            )
            for i, (g, lim, w, d) in enumerate(spec)
        ],
        gpus(cap),
    )


@settings(max_examples=200, deadline=None)
@given(spec=teams_st, cap=st.integers(1, 40))
def test_fair_shares_respect_capacity_limits_and_guarantees(
    spec: list[tuple[int, int | None, int, int]], cap: int
) -> None:
    tree = _tree(spec, [0] * len(spec), cap)
    shares = [tree.share(f"t{i}").fair_share[3] for i in range(len(spec))]
    assert sum(shares) <= cap * 1000 + 1e-6
    capped = [d if lim is None else min(d, lim) for _, lim, _, d in spec]
    for share, (g, _, _, _), c in zip(shares, spec, capped, strict=True):
        assert share <= c * 1000 + 1e-6  # never past a limit or the demand
        if sum(min(gg, cc) for (gg, *_), cc in zip(spec, capped, strict=True)) <= cap:
            assert share >= min(g, c) * 1000 - 1e-6  # guarantees are honoured
    # Work conserving: capacity idles only when every capped demand is met.
    if sum(shares) < cap * 1000 - 1e-6:
        for share, c in zip(shares, capped, strict=True):
            assert share == pytest.approx(c * 1000)


@settings(max_examples=200, deadline=None)
@given(
    teams=st.lists(
        st.tuples(st.integers(0, 8), st.integers(0, 16), st.integers(0, 16)),  # g, used, pending
        min_size=1,
        max_size=4,
    ),
    own=st.tuples(st.integers(0, 8), st.integers(0, 16), st.integers(0, 16)),
    cap=st.integers(1, 64),
)
def test_a_departments_view_adds_up_its_teams(
    teams: list[tuple[int, int, int]], own: tuple[int, int, int], cap: int
) -> None:
    """What the fair-share view (GET /fairshare) shows: demand less usage is the pending
    work (a department's with its teams'), borrowed is usage above the guarantee."""
    dept_guarantee, dept_used, dept_pending = own
    nodes = [
        QueueNode("dept", guarantee=gpus(dept_guarantee), used=gpus(dept_used),
                  pending=gpus(dept_pending)),
        *(
            QueueNode(f"t{i}", parent_id="dept", guarantee=gpus(g), used=gpus(u),
                      pending=gpus(p))
            for i, (g, u, p) in enumerate(teams)
        ),
    ]  # fmt: skip
    tree = FairShareTree(nodes, gpus(cap))
    for i, (g, u, p) in enumerate(teams):
        share = tree.share(f"t{i}")
        assert share.used[3] == u * 1000
        assert share.demand[3] - share.used[3] == p * 1000
        assert share.borrowed[3] == max(u - g, 0) * 1000
    dept = tree.share("dept")
    assert dept.used[3] == (dept_used + sum(u for _, u, _ in teams)) * 1000
    assert dept.demand[3] - dept.used[3] == (dept_pending + sum(p for *_, p in teams)) * 1000
    assert dept.borrowed[3] == max(dept.used[3] - dept_guarantee * 1000, 0)


@settings(max_examples=100, deadline=None)
@given(
    weights=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    task=st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_drf_order_equalises_weighted_dominant_shares(
    weights: list[int], task: tuple[int, int]
) -> None:
    """Progressive filling in the tree's order with unbounded demand: every team's weighted
    dominant share ends within one task of every other's (the DRF invariant)."""
    capacity = Resources(cpu_milli=64_000, gpu_milli=32_000)
    per_task = Resources(cpu_milli=task[0] * 1000, gpu_milli=task[1] * 1000)
    used = [Resources() for _ in weights]
    while True:
        tree = FairShareTree(
            [
                QueueNode(f"t{i}", weight=w, used=used[i], pending=capacity)
                for i, w in enumerate(weights)
            ],
            capacity,
        )
        order = sorted(range(len(weights)), key=lambda i: (tree.order_key(f"t{i}"), i))
        total = sum(used, Resources())
        if not (total + per_task).fits_in(capacity):
            break
        first = order[0]
        used[first] = used[first] + per_task
    tree = FairShareTree(
        [QueueNode(f"t{i}", weight=w, used=used[i]) for i, w in enumerate(weights)], capacity
    )
    shares = [tree.dominant_share(f"t{i}") for i in range(len(weights))]
    task_share = max(task[0] / 64, task[1] / 32)
    assert max(shares) - min(shares) <= task_share / min(weights) + 1e-9


def test_a_stored_cycle_is_cut_not_fatal() -> None:
    """Two concurrent admin changes may store a cycle; the scheduler must still run."""
    tree = FairShareTree(
        [
            QueueNode("a", parent_id="b", guarantee=gpus(2), pending=gpus(4)),
            QueueNode("b", parent_id="a", guarantee=gpus(2), pending=gpus(4)),
            QueueNode("c", parent_id="x", pending=gpus(4)),
        ],
        FLEET,
    )
    assert sorted(tree.cut) == ["a", "c"]
    assert tree.share("b").parent_id == "a"
    assert tree.share("a").parent_id is None
    assert tree.share("c").parent_id is None
    assert sum(tree.share(t).fair_share[3] for t in ("a", "c")) <= 16000


@settings(max_examples=100, deadline=None)
@given(
    weights=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    running=st.lists(st.integers(0, 6), min_size=4, max_size=4),
)
def test_queue_interleaves_teams_by_weighted_share(weights: list[int], running: list[int]) -> None:
    """Equal priorities, unbounded demand, one-GPU workloads: in every prefix of the queue,
    each team's (running + queued ahead) / weight is within one workload / weight of every
    other team's that still has work behind (progressive filling, DRF order)."""
    from factories.scheduler import make_pending

    from gpuyard.scheduler.queue import order_queue

    teams = [f"t{i}" for i in range(len(weights))]
    per_team = 20
    nodes = [
        QueueNode(t, weight=w, used=gpus(running[i]), pending=gpus(per_team))
        for i, (t, w) in enumerate(zip(teams, weights, strict=True))
    ]
    tree = FairShareTree(nodes, gpus(16))  # contended: demand is well above the fleet
    pending = [
        make_pending(f"{t}-{k:02d}", gpu=1, team=t, submitted_at=k)
        for t in teams
        for k in range(per_team)
    ]
    order = order_queue(pending, {}, tree)
    assert sorted(w.workload_id for w in order) == sorted(w.workload_id for w in pending)
    counts = {t: running[i] for i, t in enumerate(teams)}
    weight = dict(zip(teams, weights, strict=True))
    left = dict.fromkeys(teams, per_team)
    for workload in order:
        team = workload.team_id
        assert team is not None
        # The chosen team is (within one workload) the least served of those with work left.
        mine = counts[team] / weight[team]
        others = [counts[t] / weight[t] for t in teams if left[t] > 0]
        assert mine <= min(others) + 1 / min(weights) + 1e-9
        counts[team] += 1
        left[team] -= 1
    # Within a team, its own order (submit time) is kept.
    for t in teams:
        mine = [w.submitted_at for w in order if w.team_id == t]
        assert mine == sorted(mine)


@settings(max_examples=100, deadline=None)
@given(weights=st.lists(st.integers(1, 4), min_size=2, max_size=4))
def test_teams_under_one_department_interleave_by_weight(weights: list[int]) -> None:
    """The department's ratio grows with each sibling's turn: every key is current when
    its team is served, so siblings fill by their weights (they alternated regardless of
    weight while a waiting team's key still held the department's older ratio)."""
    from factories.scheduler import make_pending

    from gpuyard.scheduler.queue import order_queue

    teams = [f"t{i}" for i in range(len(weights))]
    per_team = 16
    nodes = [QueueNode("dept")] + [
        QueueNode(t, parent_id="dept", weight=w, pending=gpus(per_team))
        for t, w in zip(teams, weights, strict=True)
    ]
    tree = FairShareTree(nodes, gpus(16))
    pending = [
        make_pending(f"{t}-{k:02d}", gpu=1, team=t, submitted_at=k)
        for t in teams
        for k in range(per_team)
    ]
    counts = dict.fromkeys(teams, 0)
    weight = dict(zip(teams, weights, strict=True))
    for workload in order_queue(pending, {}, tree)[:16]:
        team = workload.team_id
        assert team is not None
        mine = counts[team] / weight[team]
        assert mine <= min(counts[t] / weight[t] for t in teams) + 1 / min(weights) + 1e-9
        counts[team] += 1
