"""What a write answers is what a later read returns: the submission's workload is built
from the values it inserted (not read back), and servers and clusters are mapped from the
rows just written."""

from __future__ import annotations

from factories.app import admin_caller

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster, get_cluster, list_clusters
from gpuyard.services.fleet.servers import (
    GpuSpec,
    SimulatedServerSpec,
    create_server,
    get_server,
    list_servers,
)
from gpuyard.services.workloads.submission import (
    WorkloadFilter,
    create_workload,
    get_workload,
    list_workloads,
)


def test_a_submission_answers_what_a_read_returns(clock_ctx: ServiceContext) -> None:
    ctx, caller = clock_ctx, admin_caller(clock_ctx)
    spec = WorkloadCreate(
        image=" nginx:1 ",
        name="web",
        command=["nginx", "-g", "daemon off;"],
        env={"A": "1", "SECRET": "x"},
        plain_env=["A", "A"],
        ports=[80, 443],
        node_selector={"zone": "demo"},
        priority=4,
        replicas=2,
        gang=True,
        duration_s=5.5,
    )
    answered = create_workload(ctx, caller, spec)
    assert answered.image == "nginx:1"
    assert answered.plain_env_keys == ("A",)
    assert answered.placements == ()
    assert get_workload(ctx, caller, answered.id) == answered
    found, count = list_workloads(ctx, caller, WorkloadFilter(name="web"), 10, 0)
    assert (found, count) == ([answered], 1)


def test_servers_and_clusters_answer_what_a_read_returns(clock_ctx: ServiceContext) -> None:
    ctx, caller = clock_ctx, admin_caller(clock_ctx)
    cluster = create_cluster(ctx, caller, "sim-b", ClusterKind.SIMULATED)
    assert not cluster.has_kubeconfig
    assert get_cluster(ctx, cluster.id) == cluster
    assert cluster in list_clusters(ctx, 100, 0)[0]
    spec = SimulatedServerSpec(
        "gpu-x", cluster.id, 16, 64, 100, [GpuSpec("A100", 80), GpuSpec("A100", 80)], {"r": "1"}
    )
    server = create_server(ctx, caller, spec)
    assert [g.index for g in server.gpus] == [0, 1]
    assert server.capacity.gpu_milli == 2000
    assert server.allocated.is_zero()
    assert get_server(ctx, server.id) == server
    assert list_servers(ctx, cluster.id, None, 10, 0) == ([server], 1)
