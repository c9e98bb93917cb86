"""Loop leases: with two processes on one database, each leased loop ticks once per interval
across both, passes to the other process when its holder dies or stops, and a loop without
a lease ticks in both. The ticks go through the loops `build_loops` declares and the
runner's lease gate; a counting wrapper records which process really ran each tick."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings
from factories.clock import ManualClock

from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.background import build_loops, stop_loops
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.loops.leases import LeaseFence, holds_scheduler_lease, lease_ttl
from gpuyard.services.loops.runner import Loop, LoopRunner
from gpuyard.store.fleet_tables import ServerRow

HEALTH_S = 10.0
#: Nothing listens there: every probe of the server is a miss, at once.
DEAD_AGENT = "http://127.0.0.1:9"


@dataclass
class Process:
    """One gpuyard process: its context, its runner and its loops, each tick counted."""

    ctx: ServiceContext
    runner: LoopRunner
    ticks: dict[str, int]

    def loop(self, name: str) -> Loop:
        return next(loop for loop in self.runner.loops if loop.name == name)

    def tick(self, name: str) -> bool:
        """Run ``name`` once through the runner's lease gate: True if its tick ran here."""
        return self.runner.run_tick(self.loop(name))


def _process(ctx: ServiceContext) -> Process:
    ticks: dict[str, int] = {}
    loops = build_loops(ctx)
    for loop in loops:
        loop.tick = _counting(loop.tick, loop.name, ticks)
    return Process(ctx, LoopRunner(loops, ctx), ticks)


def _counting(
    tick: Callable[[LeaseFence | None], object], name: str, ticks: dict[str, int]
) -> Callable[[LeaseFence | None], object]:
    def counted(fence: LeaseFence | None) -> object:
        ticks[name] = ticks.get(name, 0) + 1
        return tick(fence)

    return counted


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    """Two processes on one database, leases on (the embedded SQLite needs the setting),
    sharing one clock the test moves by hand."""
    if request.param == "sqlite":
        url, lease = None, True  # off by default with SQLite
    else:
        url, lease = str(request.getfixturevalue("postgres_url")), None  # on by default
    settings = make_settings(
        tmp_path / "data", url, demo=False, scheduler_lease=lease, health_interval_s=HEALTH_S
    )
    clock = ManualClock()
    contexts = [make_context(settings), make_context(settings)]
    for ctx in contexts:
        ctx.clock = clock
    yield _process(contexts[0]), _process(contexts[1])
    for ctx in contexts:
        ctx.db.dispose()


def _dead_server(ctx: ServiceContext) -> str:
    """A docker server whose agent never answers: the health loop counts a miss per probe."""
    cluster = create_cluster(ctx, admin_caller(ctx), "docker", ClusterKind.DOCKER)
    now = ctx.now()
    with ctx.db.write() as session:
        row = ServerRow(
            name="silent",
            cluster_id=cluster.id,
            status="online",
            labels={},
            agent_url=DEAD_AGENT,
            agent_token_enc=ctx.secret_box.encrypt("token"),
            cpu_milli=0,
            ram_mib=0,
            storage_mib=0,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            gpus=[],
        )
        session.add(row)
        session.flush()
        return row.id


def _server(ctx: ServiceContext, server_id: str) -> tuple[str, int]:
    with ctx.db.read() as session:
        row = session.get(ServerRow, server_id)
        assert row is not None
        return row.status, row.missed_probes


def _clock(process: Process) -> ManualClock:
    assert isinstance(process.ctx.clock, ManualClock)
    return process.ctx.clock


def test_the_health_loop_probes_once_per_interval_across_processes(
    pair: tuple[Process, Process],
) -> None:
    a, b = pair
    server = _dead_server(a.ctx)
    # a takes the lease; then b asks first in the next interval, and a keeps it all the same.
    for round_, order in enumerate([(a, b), (b, a)], start=1):
        assert sum(p.tick("health") for p in order) == 1
        assert _server(a.ctx, server) == ("online", round_)  # one miss per interval, not two
        _clock(a).advance(HEALTH_S)
    assert (a.ticks.get("health", 0), b.ticks.get("health", 0)) == (2, 0)
    # The third miss (not the second interval's second) takes the server offline.
    assert [a.tick("health"), b.tick("health")] == [True, False]
    assert _server(a.ctx, server) == ("offline", 3)


def test_each_loop_has_a_lease_of_its_own(pair: tuple[Process, Process]) -> None:
    a, b = pair
    assert a.tick("health")
    assert holds_scheduler_lease(b.ctx)  # b schedules while a probes
    assert b.tick("reconcile")
    assert not a.tick("reconcile")
    assert not b.tick("health")
    assert not holds_scheduler_lease(a.ctx)


def test_a_dead_holders_lease_lapses_to_the_other_process(pair: tuple[Process, Process]) -> None:
    a, b = pair
    assert a.tick("health")  # then a dies: it never renews
    ttl = lease_ttl(HEALTH_S)
    assert ttl == timedelta(seconds=5 * HEALTH_S)
    waited = 0.0
    while not b.tick("health"):
        assert waited <= ttl.total_seconds(), "b never took the health loop over"
        _clock(b).advance(HEALTH_S)
        waited += HEALTH_S
    assert waited > ttl.total_seconds()  # not before the lease lapsed
    assert not a.tick("health")  # a "comes back": b holds it now
    assert (a.ticks["health"], b.ticks["health"]) == (1, 1)


def test_a_clean_stop_hands_every_lease_over_at_once(pair: tuple[Process, Process]) -> None:
    a, b = pair
    leased = ["starter", "health", "reconcile", "cleanup", "history"]
    assert all(a.tick(name) for name in leased)
    assert holds_scheduler_lease(a.ctx)
    assert not any(b.tick(name) for name in leased)
    stop_loops(a.ctx, a.runner)  # the runner was never started: stop only releases
    _clock(b).advance(0.01)  # far less than an interval
    assert all(b.tick(name) for name in leased)
    assert holds_scheduler_lease(b.ctx)


def test_a_loop_without_a_lease_ticks_in_every_process(pair: tuple[Process, Process]) -> None:
    a, b = pair
    assert a.loop("change-watch").lease is None
    for _ in range(3):
        assert [a.tick("change-watch"), b.tick("change-watch")] == [True, True]
    assert (a.ticks["change-watch"], b.ticks["change-watch"]) == (3, 3)


def test_every_loop_but_the_change_watch_declares_a_lease(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None, demo=False))
    try:
        leases = {loop.name: loop.lease for loop in build_loops(ctx)}
    finally:
        ctx.db.dispose()
    assert leases == {
        "scheduler": "scheduler",
        "lifecycle": "scheduler",  # tied to the scheduler's, as before
        "starter": "starter",
        "health": "health",
        "kube-nodes": "kube-nodes",
        "reconcile": "reconcile",
        "cleanup": "cleanup",
        "pools": "pools",
        "culling": "culling",
        "history": "history",
        "change-watch": None,
    }


def test_without_leases_every_process_ticks(tmp_path: Path) -> None:
    """The embedded SQLite's default: leases off, both processes probe."""
    settings = make_settings(tmp_path / "data", None, demo=False)
    contexts = [make_context(settings), make_context(settings)]
    try:
        a, b = (_process(ctx) for ctx in contexts)
        assert [a.tick("health"), b.tick("health"), a.tick("health")] == [True, True, True]
    finally:
        for ctx in contexts:
            ctx.db.dispose()
