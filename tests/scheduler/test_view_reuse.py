"""Reusing the same ServerView objects across cycles (as the snapshot cache does) changes no
decision: the per-view cache (:mod:`gpuyard.scheduler.view_info`, kept in the caller's
:class:`~gpuyard.scheduler.engine_cache.EngineCache`) only saves work."""

from __future__ import annotations

import copy
from dataclasses import replace

from factories.scheduler import H100, make_pending, make_server, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.snapshot import ClusterSnapshot, SchedulerConfig, ServerView

from .test_properties import MIN_RUNTIME, operations, prefilled_world, run_op


class _Interner:
    """Hands out the previous view object for a server whose view is equal by value, like
    ``services.scheduling.snapshot_loader.SnapshotCache`` keeps unchanged rows' views."""

    def __init__(self) -> None:
        self._views: dict[str, ServerView] = {}

    def __call__(self, snapshot: ClusterSnapshot) -> ClusterSnapshot:
        servers: list[ServerView] = []
        for view in snapshot.servers:
            old = self._views.get(view.id)
            if old is not None and old == view:
                view = old
            self._views[view.id] = view
            servers.append(view)
        return replace(snapshot, servers=tuple(servers))


@settings(max_examples=80, deadline=None)
@given(operations, st.sampled_from(["pack", "binpack", "spread", "fgd"]))
def test_reused_views_decide_like_fresh_copies(ops: list[object], profile: str) -> None:
    world = prefilled_world()
    config = SchedulerConfig(
        profile=profile, min_runtime_seconds=MIN_RUNTIME, starvation_seconds=60
    )
    intern = _Interner()
    cache = EngineCache()
    for serial, op in enumerate(ops):
        run_op(world, op, serial)  # type: ignore[arg-type]
        snapshot, pending = intern(world.snapshot()), world.pending()
        reused = schedule_cycle(snapshot, pending, config, now=world.now, cache=cache)
        # A deep copy has new view objects: nothing cached applies to it.
        fresh = schedule_cycle(copy.deepcopy(snapshot), pending, config, now=world.now, cache=cache)
        assert reused == fresh
        # The same objects once more, now with every derived value cached: still the same.
        assert schedule_cycle(snapshot, pending, config, now=world.now, cache=cache) == reused
        world.apply(reused, pending, MIN_RUNTIME)
        world.now += 1


def test_cached_static_verdicts_follow_the_request() -> None:
    # The same view objects answer different groups (cluster, labels, model) differently.
    servers = [
        make_server("a", gpus=2, cluster="c1", labels={"zone": "x"}),
        make_server("b", gpus=2, model="NVIDIA A100", cluster="c2", labels={"zone": "y"}),
        make_server("c", gpus=2, status=ServerStatus.DRAINING, cluster="c1"),
    ]
    snapshot = make_snapshot(servers)
    config = SchedulerConfig()
    cache = EngineCache()
    cases = [
        (make_pending("w", cluster="c2"), "b"),
        (make_pending("w", cluster="c1"), "a"),
        (make_pending("w", selector={"zone": "y"}), "b"),
        (make_pending("w", gpu=1, model="a100"), "b"),
        (make_pending("w", gpu=1, model="H100"), "a"),
    ]
    for _ in range(2):  # the second round answers from cached verdicts
        for workload, server in cases:
            result = schedule_cycle(snapshot, [workload], config, now=0.0, cache=cache)
            assert [a.server_id for a in result.admitted[0].assignments] == [server]
    # Reasons quote the model as written, also when the verdict comes from the cache.
    for written in ("B200", "b200 "):
        workload = make_pending("w", gpu=1, model=written)
        result = schedule_cycle(snapshot, [workload], config, 0.0, cache)
        fresh = schedule_cycle(copy.deepcopy(snapshot), [workload], config, 0.0, cache)
        assert result == fresh
        assert written.strip() in result.pending[0].reason


def test_a_view_is_never_answered_for_another_object() -> None:
    views = EngineCache().views
    view = make_server("a", gpus=2, model=H100)
    info = views.info(view)
    assert views.info(view) is info
    other = replace(view, gpus=view.gpus[:1])
    assert views.info(other) is not info
    assert views.info(other).dev_index == (0,)


def test_the_cache_stays_bounded() -> None:
    views = [make_server(f"s{i}", gpus=1) for i in range(3000)]
    cache = EngineCache()
    for start in range(0, 3000, 100):
        schedule_cycle(make_snapshot(views[start : start + 100]), [], SchedulerConfig(), 0.0, cache)
    assert len(cache.views) <= 2 * 100 + 1024 + 100
