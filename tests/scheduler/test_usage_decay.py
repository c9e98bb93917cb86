"""Decayed historical usage (time-based fair share, scheduler/usage_decay.py) and how the
fair-share tree mixes it into the DRF order (scheduler/fairshare.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from factories.scheduler import make_pending
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import FairShareTree, QueueNode
from gpuyard.scheduler.queue import order_queue
from gpuyard.scheduler.usage_decay import (
    MAX_EXPONENT,
    Vector,
    accrue,
    decay_factor,
    decayed_share,
    saturation,
    usage_penalty,
)

HOUR = 3600.0
amounts = st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
vectors = st.tuples(amounts, amounts, amounts, amounts)
half_lives = st.floats(60, 366 * 86400)
elapsed = st.floats(0, 10 * 366 * 86400)
ZERO: Vector = (0.0, 0.0, 0.0, 0.0)


def gpus(n: float) -> Resources:
    return Resources(gpu_milli=int(n * 1000))


# -- the arithmetic ------------------------------------------------------------------------
@given(history=vectors, half_life=half_lives)
def test_one_half_life_halves_the_history(history: Vector, half_life: float) -> None:
    assert accrue(history, ZERO, half_life, half_life) == pytest.approx(
        tuple(h / 2 for h in history), rel=1e-12
    )


@given(history=vectors, half_life=half_lives, t1=elapsed, t2=elapsed)
def test_without_usage_history_only_decays(
    history: Vector, half_life: float, t1: float, t2: float
) -> None:
    """Monotone: the longer ago, the less it counts; never below zero."""
    early, late = sorted((t1, t2))
    at_early = accrue(history, ZERO, early, half_life)
    at_late = accrue(history, ZERO, late, half_life)
    for h, a, b in zip(history, at_early, at_late, strict=True):
        assert 0 <= b <= a <= h


@given(history=vectors, used=vectors, more=vectors, half_life=half_lives, t=elapsed)
def test_more_usage_never_counts_less(
    history: Vector, used: Vector, more: Vector, half_life: float, t: float
) -> None:
    bigger: Vector = (used[0] + more[0], used[1] + more[1], used[2] + more[2], used[3] + more[3])
    for a, b in zip(
        accrue(history, used, t, half_life), accrue(history, bigger, t, half_life), strict=True
    ):
        assert a <= b


@given(
    history=vectors,
    used=vectors,
    half_life=half_lives,
    t1=st.floats(0, 86400),
    t2=st.floats(0, 86400),
)
def test_accruing_in_steps_equals_accruing_at_once(
    history: Vector, used: Vector, half_life: float, t1: float, t2: float
) -> None:
    """The integral is exact for a constant holding: how often the loop ticks does not
    change the figure."""
    stepped = accrue(accrue(history, used, t1, half_life), used, t2, half_life)
    direct = accrue(history, used, t1 + t2, half_life)
    assert stepped == pytest.approx(direct, rel=1e-8, abs=1e-6)


@given(used=vectors, half_life=half_lives)
def test_holding_forever_saturates_at_half_life_over_ln2(used: Vector, half_life: float) -> None:
    forever = accrue(ZERO, used, 200 * half_life, half_life)
    assert forever == pytest.approx(tuple(u * half_life / math.log(2) for u in used), rel=1e-9)
    # The whole fleet held forever is a decayed share of 1.
    if max(used) > 0:
        assert decayed_share(forever, used, half_life) == pytest.approx(1.0)


def test_a_gap_counts_only_what_was_seen() -> None:
    """Usage over a gap longer than the loop saw only decays the old figure."""
    half_life = HOUR
    with_gap = accrue((1000.0, 0, 0, 0), (10.0, 0, 0, 0), 10 * HOUR, half_life, counted_s=30)
    assert with_gap[0] == pytest.approx(
        1000 * 2**-10 + 10 * saturation(half_life) * (1 - decay_factor(30, half_life))
    )


def test_penalty_is_slurms_factor_inverted_and_capped() -> None:
    assert usage_penalty(0.0, 0.5) == 1.0
    assert usage_penalty(0.5, 0.5) == 2.0  # used exactly its share: F = 1/2
    assert usage_penalty(1.0, 0.25) == 16.0
    assert usage_penalty(0.1, 0.0) == 2.0**MAX_EXPONENT  # a weight-0 node with history


# -- the order -----------------------------------------------------------------------------
node_specs = st.lists(
    st.tuples(
        st.integers(0, 16),  # guarantee (GPUs)
        st.integers(1, 4),  # weight
        st.integers(0, 16),  # used (GPUs)
        st.integers(0, 16),  # pending (GPUs)
        st.floats(0, 1e9),  # history (GPU-milli-seconds)
        st.sampled_from([None, 0, 1]),  # parent: none, or the first or second node
    ),
    min_size=1,
    max_size=5,
)


def _nodes(specs: list[tuple[int, int, int, int, float, int | None]]) -> list[QueueNode]:
    nodes = []
    for i, (guarantee, weight, used, pending, history, parent) in enumerate(specs):
        parent_id = f"t{parent}" if parent is not None and parent < i else None
        nodes.append(
            QueueNode(
                f"t{i}",
                parent_id=parent_id,
                guarantee=gpus(guarantee),
                weight=weight,
                used=gpus(used),
                pending=gpus(pending),
                history=(0.0, 0.0, 0.0, history),
            )
        )
    return nodes


def _drf_key(tree: FairShareTree, team: str) -> tuple[int, float, float]:
    """Today's DRF key, written out: under the guarantee first, then the department's
    and the team's used / fair share."""
    node = tree.nodes[team]
    guarantee = (
        node.guarantee.cpu_milli,
        node.guarantee.ram_mib,
        node.guarantee.storage_mib,
        node.guarantee.gpu_milli,
    )
    used = tree.used[team]
    under = any(g > 0 for g in guarantee) and all(
        u < g - 1e-9 or g <= 0 for u, g in zip(used, guarantee, strict=True)
    )
    return (
        0 if under else 1,
        tree.fair_share_ratio(tree.top_of(team)),
        tree.fair_share_ratio(team),
    )


@settings(max_examples=150, deadline=None)
@given(specs=node_specs)
def test_with_the_half_life_off_the_order_is_todays_drf_order(
    specs: list[tuple[int, int, int, int, float, int | None]],
) -> None:
    nodes = _nodes(specs)
    off = FairShareTree(nodes, gpus(32))
    for team in off.nodes:
        assert off.order_key(team) == (*_drf_key(off, team), 0.0, 0.0)
        assert off.share(team).history == ZERO
        assert off.share(team).usage_penalty == 1.0
    # And the queue itself: history present but ignored orders as no history at all.
    pending = [
        make_pending(f"{n.team_id}-{k}", gpu=1, team=n.team_id, submitted_at=k)
        for n in nodes
        for k in range(3)
    ]
    stripped = FairShareTree([replace(n, history=ZERO) for n in nodes], gpus(32))
    assert [w.workload_id for w in order_queue(pending, {}, off)] == [
        w.workload_id for w in order_queue(pending, {}, stripped)
    ]
    # On, without any history, the order does not move either.
    on_empty = FairShareTree([replace(n, history=ZERO) for n in nodes], gpus(32), HOUR)
    assert [w.workload_id for w in order_queue(pending, {}, on_empty)] == [
        w.workload_id for w in order_queue(pending, {}, stripped)
    ]


@settings(max_examples=150, deadline=None)
@given(
    used=st.integers(1, 16),
    # Whole GPU-milli-seconds: differences the float arithmetic can tell apart.
    history=st.tuples(st.integers(0, 10**8), st.integers(0, 10**8)),
)
def test_more_history_orders_later_among_equals(used: int, history: tuple[int, int]) -> None:
    """Two teams alike in all but their past: the one that used more lately comes later."""
    tree = FairShareTree(
        [
            QueueNode("a", used=gpus(used), pending=gpus(32), history=(0, 0, 0, history[0])),
            QueueNode("b", used=gpus(used), pending=gpus(32), history=(0, 0, 0, history[1])),
        ],
        gpus(32),
        HOUR,
    )
    if history[0] < history[1]:
        assert tree.order_key("a") < tree.order_key("b")
    elif history[0] > history[1]:
        assert tree.order_key("a") > tree.order_key("b")
    else:
        assert tree.order_key("a") == tree.order_key("b")


def test_a_returning_team_is_served_before_the_one_that_held_the_fleet() -> None:
    """Team a held the whole 16-GPU fleet for two half-lives while b was away; both now
    queue sixteen 1-GPU workloads. Plain DRF gives each half of the fleet; with the
    decay b gets most of the first sixteen places."""
    half_life = HOUR
    held = accrue(ZERO, (0.0, 0.0, 0.0, 16_000.0), 2 * half_life, half_life)
    nodes = [
        QueueNode("a", pending=gpus(16), history=held),
        QueueNode("b", pending=gpus(16)),
    ]
    pending = [
        make_pending(f"{t}-{k:02d}", gpu=1, team=t, submitted_at=k)
        for t in ("a", "b")
        for k in range(16)
    ]
    plain = order_queue(pending, {}, FairShareTree(nodes, gpus(16)))
    decayed_tree = FairShareTree(nodes, gpus(16), half_life)
    decayed = order_queue(pending, {}, decayed_tree)
    assert sum(w.team_id == "b" for w in plain[:16]) == 8
    # U = 3/4 of the fleet's saturation, S = 1/2: a's ratio counts 2^1.5 ~ 2.83 times.
    assert decayed_tree.usage_penalty("a") == pytest.approx(2**1.5)
    assert sum(w.team_id == "b" for w in decayed[:16]) >= 11
    # The view shows it: a's factor is Slurm's 2^(-U/S), b's is 1.
    assert decayed_tree.share("a").history == held
    assert decayed_tree.share("b").usage_penalty == 1.0


def test_a_department_carries_its_teams_history() -> None:
    tree = FairShareTree(
        [
            QueueNode("dept"),
            QueueNode("t1", parent_id="dept", history=(0, 0, 0, 1000.0)),
            QueueNode("t2", parent_id="dept", history=(0, 0, 0, 500.0)),
            QueueNode("solo"),
        ],
        gpus(8),
        HOUR,
    )
    assert tree.share("dept").history == (0, 0, 0, 1500.0)
    assert tree.normalized_share("t1") == 0.5
    assert tree.usage_penalty("dept") > tree.usage_penalty("solo") == 1.0
