"""The PreScore phase (a scorer prepared once per cycle) and the per-cycle score cache."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
from factories.scheduler import make_pending, make_running, make_server, make_snapshot, placed_on

from gpuyard.scheduler import registry
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.framework import PreScore, Scorer
from gpuyard.scheduler.plugins.spread import LeastAllocatedScorer
from gpuyard.scheduler.registry import build_profile
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation, SchedulerConfig
from gpuyard.scheduler.state import CycleState, NodeState


class PreferServer:
    """Scores 1 on one server and 0 elsewhere; which server is chosen only in ``prepare``."""

    name = "prefer_server"

    def __init__(self, server_id: str = "") -> None:
        self.server_id = server_id
        #: (running replica count, queue ids) seen by each ``prepare`` of this instance.
        self.prepared: list[tuple[int, list[str]]] = []

    def prepare(self, cycle: CycleState, queue: Sequence[Request]) -> Scorer:
        running = sum(len(node.running) for node in cycle.nodes.values())
        self.prepared.append((running, [req.id for req in queue]))
        # Prefer the server the first queued workload names in its own id ("w@server").
        return PreferServer(queue[0].id.split("@")[1])

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        return 1.0 if node.id == self.server_id else 0.0


class CountingScorer(LeastAllocatedScorer):
    """``least_allocated`` that counts its calls."""

    calls = 0

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        CountingScorer.calls += 1
        return super().score(req, node, alloc)


@pytest.fixture
def prefer_profile(monkeypatch: pytest.MonkeyPatch) -> Iterator[PreferServer]:
    """Profile ``test-prefer``: ``PreferServer`` first, then the default's scorers."""
    plugin = PreferServer()
    monkeypatch.setitem(registry.REGISTRY, "prefer_server", lambda: plugin)
    monkeypatch.setitem(
        registry.PROFILES,
        "test-prefer",
        replace(registry.PROFILES["binpack"], scorers=("prefer_server", "gpu_pack")),
    )
    return plugin


def test_prepare_runs_once_per_cycle_with_its_state_and_ordered_queue(
    prefer_profile: PreferServer,
) -> None:
    servers = [make_server("a", gpus=2), make_server("b", gpus=2)]
    snapshot = make_snapshot(servers, [make_running("old", "a", gpus=[0])])
    pending = [
        make_pending("late@a", gpu=1, submitted_at=5),
        make_pending("first@b", gpu=1, submitted_at=1, priority=5),
    ]
    config = SchedulerConfig(profile="test-prefer")
    result = schedule_cycle(snapshot, pending, config, now=10)
    # One call, seeing the one running replica and the queue in queue order.
    assert prefer_profile.prepared == [(1, ["first@b", "late@a"])]
    # The prepared scorer (prefers "b", from the queue head) ranked every placement.
    assert placed_on(result, "first@b") == [("b", ((0, 1000),))]
    assert placed_on(result, "late@a") == [("b", ((1, 1000),))]


def test_the_registered_plugin_keeps_no_cycle_state(prefer_profile: PreferServer) -> None:
    cache = EngineCache()
    profile = cache.profile("test-prefer")
    snapshot = make_snapshot([make_server("a", gpus=1), make_server("b", gpus=1)])
    config = SchedulerConfig(profile="test-prefer")
    schedule_cycle(snapshot, [make_pending("w@a", gpu=1)], config, now=0, cache=cache)
    schedule_cycle(snapshot, [make_pending("w@b", gpu=1)], config, now=1, cache=cache)
    assert [queue for _, queue in prefer_profile.prepared] == [["w@a"], ["w@b"]]
    assert prefer_profile.server_id == ""  # each cycle got its own scorer
    assert cache.profile("test-prefer") is profile


def test_a_profile_without_prescore_is_used_as_built() -> None:
    profile = build_profile("binpack")
    cycle = CycleState(make_snapshot([make_server("a", gpus=1)]), now=0)
    assert not any(isinstance(s, PreScore) for s in profile.scorers)
    assert profile.for_cycle(cycle, []).scorers is profile.scorers


def test_scores_are_reused_until_the_server_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.REGISTRY, "counting", CountingScorer)
    monkeypatch.setitem(
        registry.PROFILES,
        "test-counting",
        replace(registry.PROFILES["spread"], scorers=("counting",)),
    )
    CountingScorer.calls = 0
    servers = [make_server(name, gpus=8) for name in ("a", "b", "c")]
    pending = [make_pending(f"w{i}", gpu=1, submitted_at=i) for i in range(3)]
    result = schedule_cycle(
        make_snapshot(servers), pending, SchedulerConfig(profile="test-counting"), now=0
    )
    # Spread sees each placement: three equal workloads land on three servers...
    assert sorted(a.assignments[0].server_id for a in result.admitted) == ["a", "b", "c"]
    # ...while only the server that changed is scored again: 3 + 1 + 1 calls, not 9.
    assert CountingScorer.calls == 5
