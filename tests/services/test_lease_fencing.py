"""Fencing tokens: a process that paused past its lease while another took it over cannot
commit the writes of its old term. The scheduler's apply, the cleanup's outcome and the
runner's hand-off of the fence, on SQLite (leases switched on) and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings
from factories.clock import ManualClock
from kubernetes import client as k8s
from sqlalchemy import func, select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.kube_names import pod_name
from gpuyard.domain.server_state import ClusterKind
from gpuyard.domain.workload_state import HOLDS_RESOURCES
from gpuyard.runtimes.kubernetes import KubeNode, Requests, make_handle, node_inventory
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.background import build_loops
from gpuyard.services.containers.replica_specs import load_replica_jobs, servers_of_kinds
from gpuyard.services.containers.starter import record_started
from gpuyard.services.containers.teardown import run_teardowns
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.kube_nodes import sync_cluster_nodes
from gpuyard.services.loops.leases import (
    Fenced,
    LeaseFence,
    lease_ttl,
    take_lease,
    take_scheduler_lease,
)
from gpuyard.services.loops.runner import LoopRunner
from gpuyard.services.scheduling.admissions import apply_admission_batch
from gpuyard.services.scheduling.cluster_leases import take_cluster_leases
from gpuyard.services.scheduling.cycle import plan_cycle, run_scheduling_cycle
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store import containers as container_store
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.runtime_tables import ContainerTeardownRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServiceContext, ServiceContext]]:
    """Two processes on one database (the demo fleet), leases on, one hand-moved clock."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    first = make_context(make_settings(tmp_path / "data", url, scheduler_lease=True))
    second = make_context(make_settings(tmp_path / "data", url, scheduler_lease=True, demo=False))
    clock = ManualClock()
    first.clock = second.clock = clock
    yield first, second
    first.db.dispose()
    second.db.dispose()


def _pause_past_the_lease(ctx: ServiceContext, interval_s: float) -> None:
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(lease_ttl(interval_s).total_seconds() + 1)


def _statuses(ctx: ServiceContext) -> dict[str, str]:
    with ctx.db.read() as session:
        return dict(session.execute(select(WorkloadRow.id, WorkloadRow.status)).all())


def _reserved_cpu(ctx: ServiceContext) -> int:
    with ctx.db.read() as session:
        return int(session.scalar(select(func.sum(ServerRow.alloc_cpu_milli))) or 0)


def test_a_paused_scheduler_cannot_commit_its_apply_after_a_takeover(
    pair: tuple[ServiceContext, ServiceContext],
) -> None:
    a, b = pair
    spec = WorkloadCreate(image="busybox", name="train", cpu=2, ram_gb=4, gpu=1)
    workload = create_workload(a, admin_caller(a), spec).id
    leases = take_cluster_leases(a)
    assert leases is not None
    assert leases.every_cluster  # the only scheduler: every cluster
    state, result = plan_cycle(a, leases)  # a decides...
    assert [adm.workload_id for adm in result.admitted] == [workload]
    [fence] = leases.fences.values()
    _pause_past_the_lease(a, a.settings.scheduler_interval_s)  # ...then stalls
    taken = take_cluster_leases(b)
    assert taken is not None
    assert [f.token for f in taken.fences.values()] == [fence.token + 1]  # a new term
    with pytest.raises(Fenced):
        apply_admission_batch(a, list(result.admitted), state, (fence,))
    # Nothing of a's apply was written: no reservation, no allocation, still pending.
    assert _statuses(a) == {workload: "pending"}
    assert _reserved_cpu(a) == 0
    with a.db.read() as session:
        assert session.scalar(select(func.count()).select_from(AllocationRow)) == 0
    # a's next cycle does nothing (b holds the cluster); b's places the workload once.
    assert run_scheduling_cycle(a).admitted == 0
    assert run_scheduling_cycle(b).admitted == 1
    assert _statuses(a)[workload] in ("scheduled", "running")
    assert _reserved_cpu(a) == 2000


def test_a_renewal_keeps_the_fence_valid(pair: tuple[ServiceContext, ServiceContext]) -> None:
    a, _b = pair
    spec = WorkloadCreate(image="busybox", name="train", cpu=1, ram_gb=1)
    workload = create_workload(a, admin_caller(a), spec).id
    first = take_scheduler_lease(a)
    assert isinstance(a.clock, ManualClock)
    a.clock.advance(a.settings.scheduler_interval_s)
    renewed = take_scheduler_lease(a)
    assert renewed.fence == first.fence  # same term
    state, result = plan_cycle(a)
    assert apply_admission_batch(a, list(result.admitted), state, (first.fence,)).applied == 1
    assert _statuses(a)[workload] != "pending"


def test_the_runner_hands_the_fence_to_the_cleanup_tick(
    pair: tuple[ServiceContext, ServiceContext],
) -> None:
    """The cleanup of a process that paused past its lease records nothing; the row stays
    for the new holder, whose tick finishes it."""
    a, b = pair
    with a.db.write() as session:
        server_id = session.scalars(select(ServerRow.id)).first()
        assert server_id is not None
        session.add(
            ContainerTeardownRow(
                handle="gone/c0ffee",
                server_id=server_id,
                workload_id="w" * 32,
                reason="released",
                next_attempt_at=a.now(),
            )
        )
    cleanup = next(loop for loop in build_loops(a) if loop.name == "cleanup")
    handed: list[LeaseFence | None] = []
    real_tick = cleanup.tick
    cleanup.tick = handed.append
    assert LoopRunner([cleanup], a).run_tick(cleanup)
    [stale] = handed
    assert stale is not None
    assert stale.name == "cleanup"
    _pause_past_the_lease(a, cleanup.interval_s)
    assert take_lease(b, "cleanup", cleanup.interval_s).held
    with pytest.raises(Fenced):
        run_teardowns(a, stale)
    cleanup.tick = real_tick
    assert LoopRunner([cleanup], a).run_tick(cleanup) is False  # b holds it now
    with a.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ContainerTeardownRow)) == 1
    assert run_teardowns(b, take_lease(b, "cleanup", cleanup.interval_s).fence) == 1
    with a.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ContainerTeardownRow)) == 0


def _kubernetes_node(ctx: ServiceContext) -> str:
    """A kubernetes cluster with one ready node (no API server needed to record pods)."""
    kubeconfig = "apiVersion: v1\nkind: Config\n"
    cluster_id = create_cluster(
        ctx, admin_caller(ctx), "k8s", ClusterKind.KUBERNETES, kubeconfig
    ).id
    node = k8s.V1Node.from_dict(
        {
            "metadata": {"name": "node-1"},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "8", "memory": "32Gi"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )
    assert node is not None
    sync_cluster_nodes(
        ctx, cluster_id, [KubeNode("node-1", node_inventory(node, Requests()), None)]
    )
    return cluster_id


def test_a_paused_starter_cannot_record_its_container_after_a_takeover(
    pair: tuple[ServiceContext, ServiceContext],
) -> None:
    a, b = pair
    cluster_id = _kubernetes_node(a)
    spec = WorkloadCreate(image="x", name="pod", cpu=1, ram_gb=1, cluster_id=cluster_id)
    workload = create_workload(a, admin_caller(a), spec).id
    run_scheduling_cycle(a)
    with a.db.read() as session:
        servers = servers_of_kinds(
            session, a.runtimes.kinds_where(runs_containers), ["online", "draining"]
        )
        holding = [s.value for s in HOLDS_RESOURCES]
        allocations = container_store.allocations_without_container(session, servers, holding, 32)
        [job] = load_replica_jobs(session, allocations)
    assert job.workload_id == workload
    handle = make_handle(cluster_id, "gpuyard", pod_name(job.workload_id, job.replica))
    stale = take_lease(a, "starter", a.settings.starter_interval_s).fence
    _pause_past_the_lease(a, a.settings.starter_interval_s)
    current = take_lease(b, "starter", b.settings.starter_interval_s).fence
    with pytest.raises(Fenced):
        record_started(a, job, handle, "started", fence=stale)
    assert _container_of(a, job.allocation_id) is None
    assert record_started(b, job, handle, "started", fence=current) == 1
    assert _container_of(a, job.allocation_id) is not None
    assert _statuses(a)[workload] == "starting"  # pods run once the reconcile sees them


def _container_of(ctx: ServiceContext, allocation_id: str) -> str | None:
    with ctx.db.read() as session:
        return session.scalar(
            select(AllocationRow.container_id).where(AllocationRow.id == allocation_id)
        )
