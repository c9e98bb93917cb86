"""Per-cluster scheduler leases: two workers split the clusters, each places only the work
of its own clusters (and work that names none), a dead worker's clusters pass to the other
after the lease time, and one process alone schedules everything as before. On SQLite
(leases switched on) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings
from factories.clock import ManualClock
from sqlalchemy import select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.background import build_loops, stop_loops
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.loops.leases import lease_ttl
from gpuyard.services.loops.runner import LoopRunner
from gpuyard.services.scheduling.cluster_leases import take_cluster_leases
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store.fleet_tables import ClusterRow, ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServiceContext, ServiceContext]]:
    """Two workers on one database with two clusters (the demo one and a second
    simulated one with one server), leases on, one hand-moved clock."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    a = make_context(make_settings(tmp_path / "data", url, scheduler_lease=True))
    b = make_context(make_settings(tmp_path / "data", url, scheduler_lease=True, demo=False))
    a.clock = b.clock = ManualClock()
    cluster = create_cluster(a, admin_caller(a), "second", ClusterKind.SIMULATED)
    now = a.now()
    with a.db.write() as session:
        session.add(
            ServerRow(
                name="second-0",
                cluster_id=cluster.id,
                status="online",
                labels={},
                cpu_milli=32_000,
                ram_mib=64 * 1024,
                storage_mib=100 * 1024,
                created_at=now,
                updated_at=now,
                last_seen_at=now,
                gpus=[],
            )
        )
    yield a, b
    a.db.dispose()
    b.db.dispose()


def _clusters(ctx: ServiceContext) -> list[str]:
    with ctx.db.read() as session:
        return list(session.scalars(select(ClusterRow.id).order_by(ClusterRow.id)))


def _submit(ctx: ServiceContext, cluster_id: str | None, name: str) -> str:
    spec = WorkloadCreate(image="busybox", name=name, cpu=1, ram_gb=1, cluster_id=cluster_id)
    return create_workload(ctx, admin_caller(ctx), spec).id


def _placed_in(ctx: ServiceContext, workload_id: str) -> str | None:
    """The cluster of the server the workload was placed on, or None while pending."""
    with ctx.db.read() as session:
        status = session.scalar(select(WorkloadRow.status).where(WorkloadRow.id == workload_id))
        cluster = session.scalar(
            select(ServerRow.cluster_id)
            .join(AllocationRow, AllocationRow.server_id == ServerRow.id)
            .where(AllocationRow.workload_id == workload_id)
        )
    assert (status == "pending") == (cluster is None), status
    return cluster


def _held(ctx: ServiceContext) -> set[str]:
    """The clusters ``ctx`` holds after its next try, a moment later."""
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(0.1)
    leases = take_cluster_leases(ctx)
    assert leases is not None
    return set(leases.fences)


def test_two_workers_split_the_clusters_and_place_only_their_own(
    workers: tuple[ServiceContext, ServiceContext],
) -> None:
    a, b = workers
    first, second = _clusters(a)
    assert _held(a) == {first, second}  # alone: every cluster
    assert _held(b) == set()  # joins: both are a's for now
    assert _held(a) == {first}  # a sees two members: hands the second over at once
    assert _held(b) == {second}
    on_first, on_second = _submit(a, first, "one"), _submit(a, second, "two")
    assert run_scheduling_cycle(a).admitted == 1
    assert (_placed_in(a, on_first), _placed_in(a, on_second)) == (first, None)
    assert run_scheduling_cycle(b).admitted == 1
    assert _placed_in(a, on_second) == second
    # Work that names no cluster: either worker may place it, once.
    anywhere = _submit(a, None, "anywhere")
    admitted = run_scheduling_cycle(b).admitted + run_scheduling_cycle(a).admitted
    assert admitted == 1
    assert _placed_in(a, anywhere) in (first, second)


def test_a_dead_workers_clusters_pass_to_the_other_after_the_lease_time(
    workers: tuple[ServiceContext, ServiceContext],
) -> None:
    a, b = workers
    first, second = _clusters(a)
    _held(a), _held(b), _held(a)
    assert _held(b) == {second}  # split; then a dies (renews nothing)
    stranded = _submit(b, first, "stranded")
    ttl = lease_ttl(b.settings.scheduler_interval_s).total_seconds()
    assert isinstance(b.clock, ManualClock)
    b.clock.advance(ttl / 2)
    assert run_scheduling_cycle(b).admitted == 0  # not before a's lease lapsed
    b.clock.advance(ttl / 2 + 1)
    assert run_scheduling_cycle(b).admitted == 1
    assert _placed_in(b, stranded) == first
    assert _held(b) == {first, second}


def test_a_clean_stop_hands_the_clusters_over_at_once(
    workers: tuple[ServiceContext, ServiceContext],
) -> None:
    a, b = workers
    first, second = _clusters(a)
    _held(a), _held(b), _held(a)
    assert _held(b) == {second}
    stop_loops(a, LoopRunner(build_loops(a), a))  # never started: stop only releases
    assert _held(b) == {first, second}


def test_one_process_with_leases_places_everything_as_without(
    workers: tuple[ServiceContext, ServiceContext],
) -> None:
    a, _b = workers
    first, second = _clusters(a)
    ids = [_submit(a, c, f"w{i}") for i, c in enumerate([first, second, None])]
    leases = take_cluster_leases(a)
    assert leases is not None
    assert leases.every_cluster
    assert leases.home
    assert run_scheduling_cycle(a).admitted == 3
    assert all(_placed_in(a, w) is not None for w in ids)
