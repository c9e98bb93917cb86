"""The scheduler's snapshot cache: after any sequence of changes, from this process or
another one, an incremental refresh equals a full reload; a change made through another
database connection (as another process would) decides the next cycle; and a cache that
missed a change costs a failed compare-and-set and a re-read, never an oversubscription.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from factories.app import ADMIN_EMAIL, make_context, make_settings
from factories.snapshots import cached, comparable, container_kinds, fresh
from sqlalchemy import select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.services.bootstrap import build_context
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet import servers as server_service
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.servers import GpuSpec, SimulatedServerSpec
from gpuyard.services.identity.teams import QuotaSpec, TeamSpec, create_team
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.scheduling.snapshot_loader import (
    CONFLICT_CYCLES_BEFORE_RELOAD,
    SnapshotCache,
)
from gpuyard.services.workloads.changes import (
    WorkloadChanges,
    delete_workload,
    stop_workload,
    update_workload,
)
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.workload_tables import WorkloadRow

pytestmark = pytest.mark.slow


@dataclass
class Two:
    """One database seen by two processes: ``ctx`` (whose cache is under test) and
    ``other`` (its own engine and connections)."""

    ctx: ServiceContext
    other: ServiceContext
    admin: Caller
    cluster_id: str


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Two]:
    url = (
        f"sqlite:///{tmp_path / 'shared.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    # Both run scheduling cycles (no lease): several deciders on one database.
    ctx = make_context(make_settings(tmp_path / "a", url, demo=False, scheduler_lease=False))
    other = build_context(make_settings(tmp_path / "b", url, demo=False, scheduler_lease=False))
    with ctx.db.read() as session:
        admin_id = session.scalar(select(UserRow.id).where(UserRow.email == ADMIN_EMAIL))
    admin = Caller(str(admin_id), ADMIN_EMAIL, Role.ADMIN)
    cluster_id = create_cluster(ctx, admin, "cache", ClusterKind.SIMULATED).id
    yield Two(ctx, other, admin, cluster_id)
    ctx.db.dispose()
    other.db.dispose()


def add_server(two: Two, name: str, gpus: int, via: ServiceContext | None = None) -> str:
    spec = SimulatedServerSpec(
        name=name,
        cluster_id=two.cluster_id,
        cpu=32,
        ram_gb=256,
        gpus=[GpuSpec("H100") for _ in range(gpus)],
    )
    return server_service.create_server(via or two.ctx, two.admin, spec).id


def submit(two: Two, name: str, gpu: float, via: ServiceContext | None = None, **kw: Any) -> str:
    spec = WorkloadCreate(image="busybox", name=name, cpu=1, ram_gb=1, gpu=gpu, **kw)
    return create_workload(via or two.ctx, two.admin, spec).id


def assert_cache_is_exact(ctx: ServiceContext) -> None:
    """The incremental refresh equals a full reload of the same database."""
    incremental = cached(ctx)
    stats = ctx.snapshot_cache.last_refresh
    assert stats is not None
    assert not stats.full, "expected an incremental refresh"
    assert comparable(incremental) == comparable(fresh(ctx))


def status_of(ctx: ServiceContext, workload_id: str) -> tuple[str, list[str]]:
    with ctx.db.read() as session:
        row = session.get(WorkloadRow, workload_id)
        assert row is not None
        return row.status, [a.server_id for a in row.allocations]


def test_incremental_refresh_equals_a_full_reload(two: Two) -> None:
    ctx, other, admin = two.ctx, two.other, two.admin
    add_server(two, "a", 2)
    b = add_server(two, "b", 4)
    run_scheduling_cycle(ctx)  # the first refresh loads everything
    assert ctx.snapshot_cache.last_refresh is not None
    team = create_team(ctx, admin, TeamSpec(name="t", quota=QuotaSpec(gpu=3))).id

    small = submit(two, "small", 1)
    gang = submit(two, "gang", 1, replicas=2, gang=True, team_id=team)
    spread = submit(two, "spread", 0.5, replicas=3, via=other)
    assert_cache_is_exact(ctx)  # pending work from both connections
    run_scheduling_cycle(ctx)
    assert_cache_is_exact(ctx)  # reservations and counters
    run_scheduling_cycle(other)  # the other process's own cycle (it admits nothing new)
    assert_cache_is_exact(ctx)

    update_workload(other, admin, small, WorkloadChanges(priority=5, preemptible=False))
    assert_cache_is_exact(ctx)  # a running workload's priority: its replicas change
    server_service.update_server(other, admin, b, ServerStatus.DRAINING, {"zone": "x"})
    assert_cache_is_exact(ctx)
    stop_workload(other, admin, gang)  # the team's quota use goes back to zero
    assert_cache_is_exact(ctx)
    delete_workload(other, admin, spread)  # a deleted row leaves no mark behind
    assert_cache_is_exact(ctx)
    gone = add_server(two, "c", 1, via=other)
    assert_cache_is_exact(ctx)
    server_service.delete_server(other, admin, gone)
    assert_cache_is_exact(ctx)
    # Past the team's quota of 3 GPUs with what the team holds (asking 4 alone would be
    # refused at submit: it could never run within the quota).
    holder = submit(two, "holder", 1, team_id=team, via=other)
    run_scheduling_cycle(ctx)
    assert status_of(ctx, holder)[0] == "running"
    over_quota = submit(two, "over", 3, team_id=team, via=other)
    run_scheduling_cycle(ctx)
    assert status_of(ctx, over_quota)[0] == "pending"
    with ctx.db.read() as session:
        assert session.get(WorkloadRow, over_quota).reason_code == "quota"  # type: ignore[union-attr]
    assert_cache_is_exact(ctx)


def test_a_change_by_another_process_decides_the_next_cycle(two: Two) -> None:
    first = add_server(two, "first", 1)
    second = add_server(two, "second", 1)
    run_scheduling_cycle(two.ctx)  # warm: the cache holds both servers online

    server_service.update_server(two.other, two.admin, first, ServerStatus.MAINTENANCE, None)
    job = submit(two, "job", 1, via=two.other)
    stats = run_scheduling_cycle(two.ctx)

    refresh = two.ctx.snapshot_cache.last_refresh
    assert refresh is not None
    assert not refresh.full
    assert stats.admitted == 1
    assert stats.conflicts == 0  # decided on the new state, not corrected by the guard
    assert status_of(two.ctx, job) == ("running", [second])

    # And the reverse: the other process fills the last free GPU; this one must see it.
    server_service.update_server(two.other, two.admin, first, ServerStatus.ONLINE, None)
    taken = submit(two, "taken", 1, via=two.other)
    run_scheduling_cycle(two.other)
    assert status_of(two.ctx, taken) == ("running", [first])
    late = submit(two, "late", 1)
    stats = run_scheduling_cycle(two.ctx)
    assert stats.conflicts == 0
    assert status_of(two.ctx, late)[0] == "pending"


def gpu_counters(ctx: ServiceContext) -> list[tuple[int, int]]:
    with ctx.db.read() as session:
        servers = [(s.alloc_gpu_milli, s.gpu_milli) for s in session.scalars(select(ServerRow))]
        gpus = [(g.allocated_milli, 1000) for g in session.scalars(select(ServerGpuRow))]
    return servers + gpus


def test_a_stale_cache_never_oversubscribes_and_heals(
    two: Two, monkeypatch: pytest.MonkeyPatch
) -> None:
    only = add_server(two, "only", 1)
    run_scheduling_cycle(two.ctx)  # warm: one free GPU

    # Another process takes the GPU, and this process's cache misses it (as a bug would):
    # its server reads see nothing new for one cycle.
    theirs = submit(two, "theirs", 1, via=two.other)
    run_scheduling_cycle(two.other)
    assert status_of(two.ctx, theirs) == ("running", [only])
    mine = submit(two, "mine", 1)
    monkeypatch.setattr(SnapshotCache, "_read_servers", lambda self, session, since: 0)
    stats = run_scheduling_cycle(two.ctx)

    assert stats.admitted == 0
    assert stats.conflicts == 1  # decided on the stale GPU; the guard refused it
    assert all(used <= capacity for used, capacity in gpu_counters(two.ctx))
    assert status_of(two.ctx, mine) == ("pending", [])

    monkeypatch.undo()
    stats = run_scheduling_cycle(two.ctx)  # the failed server is re-read: no new attempt
    assert stats.conflicts == 0
    assert status_of(two.ctx, mine)[0] == "pending"
    assert_cache_is_exact(two.ctx)

    stop_workload(two.other, two.admin, theirs)
    run_scheduling_cycle(two.ctx)
    assert status_of(two.ctx, mine) == ("running", [only])
    assert all(used <= capacity for used, capacity in gpu_counters(two.ctx))


def test_conflicts_that_persist_reload_everything(two: Two) -> None:
    add_server(two, "s", 1)
    run_scheduling_cycle(two.ctx)
    cache = two.ctx.snapshot_cache
    for _ in range(CONFLICT_CYCLES_BEFORE_RELOAD - 1):
        cache.note_conflicts({"s"}, {"w"})
        cached(two.ctx)
        assert cache.last_refresh is not None
        assert not cache.last_refresh.full  # one conflict: only its rows are re-read
    cache.note_conflicts({"s"}, {"w"})
    cached(two.ctx)
    assert cache.last_refresh is not None
    assert cache.last_refresh.full
    cache.note_conflicts(set(), set())  # a clean cycle resets the count
    assert cache.conflict_cycles == 0


def test_full_reload_every_period(two: Two) -> None:
    now = [0.0]
    cache = SnapshotCache(full_reload_s=60, clock=lambda: now[0])
    add_server(two, "s", 1)
    with two.ctx.db.read() as session:
        cache.refresh(session, container_kinds(two.ctx))
    now[0] = 59
    with two.ctx.db.read() as session:
        cache.refresh(session, container_kinds(two.ctx))
    assert cache.last_refresh is not None
    assert not cache.last_refresh.full
    now[0] = 61
    with two.ctx.db.read() as session:
        cache.refresh(session, container_kinds(two.ctx))
    assert cache.last_refresh.full


def test_a_refresh_that_fails_half_way_reloads_in_full(
    two: Two, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_server(two, "s", 1)
    run_scheduling_cycle(two.ctx)

    def broken(self: SnapshotCache, session: Any, since: int | None) -> int:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(SnapshotCache, "_read_workloads", broken)
    with pytest.raises(RuntimeError):
        cached(two.ctx)
    monkeypatch.undo()
    job = submit(two, "job", 1)
    run_scheduling_cycle(two.ctx)
    refresh = two.ctx.snapshot_cache.last_refresh
    assert refresh is not None
    assert refresh.full
    assert status_of(two.ctx, job)[0] == "running"
