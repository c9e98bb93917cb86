"""What the reconcile loop makes of a kubernetes workload's pods, as the API server reports
them: starting until the pod runs, then running; an image that cannot be pulled, an OOM
kill or an eviction fail the workload with that reason. The pods' creation is recorded as
the starter records it (the handle of the pod it created); the pods are read by the
runtime's own edge (``observation_of``) from objects shaped as the API server sends them.
"""

from __future__ import annotations

from typing import Any

import pytest
from factories.app import admin_caller, settle
from factories.clock import ManualClock
from fastapi.testclient import TestClient
from kube.workloads import NODE
from kubernetes import client as k8s

from gpuyard.domain.kube_names import pod_name
from gpuyard.domain.server_state import ClusterKind
from gpuyard.domain.workload_state import HOLDS_RESOURCES
from gpuyard.runtimes.kubernetes import (
    KubeNode,
    Requests,
    make_handle,
    metrics,
    node_inventory,
    observation_of,
)
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.containers.reconcile import reconcile_server
from gpuyard.services.containers.replica_specs import (
    RuntimeServer,
    load_replica_jobs,
    servers_of_kinds,
)
from gpuyard.services.containers.starter import record_started
from gpuyard.services.context import ServiceContext
from gpuyard.services.culling.loop import cull_workloads
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.kube_nodes import sync_cluster_nodes
from gpuyard.store import containers as container_store
from gpuyard.store import fleet


@pytest.fixture
def ctx(clock_ctx: ServiceContext) -> ServiceContext:
    """Each database, on a manual clock."""
    return clock_ctx


@pytest.fixture
def cluster(ctx: ServiceContext) -> str:
    kubeconfig = "apiVersion: v1\nkind: Config\n"
    cluster_id = create_cluster(
        ctx, admin_caller(ctx), "k8s", ClusterKind.KUBERNETES, kubeconfig
    ).id
    node = k8s.V1Node.from_dict(
        {
            "metadata": {"name": NODE, "labels": {"nvidia.com/gpu.product": "NVIDIA-A100"}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )
    assert node is not None
    sync_cluster_nodes(ctx, cluster_id, [KubeNode(NODE, node_inventory(node, Requests()), None)])
    return cluster_id


def placed_and_created(ctx: ServiceContext, api: TestClient, cluster_id: str) -> str:
    """A GPU workload placed on the node, its pod created (recorded as the starter does)."""
    response = api.post("/api/v1/workloads", json={"name": "train", "image": "x", "gpu": 1})
    assert response.status_code == 201, response.text
    settle(ctx)
    with ctx.db.read() as session:
        servers = servers_of_kinds(
            session, ctx.runtimes.kinds_where(runs_containers), ["online", "draining"]
        )
        holding = [s.value for s in HOLDS_RESOURCES]
        allocations = container_store.allocations_without_container(session, servers, holding, 32)
        jobs = load_replica_jobs(session, allocations)
    [job] = jobs
    assert job.server_name == NODE
    handle = make_handle(cluster_id, "gpuyard", pod_name(job.workload_id, job.replica))
    assert record_started(ctx, job, handle, "started") == 1
    return str(job.workload_id)


def pod_of(workload_id: str, phase: str, state: dict[str, Any] | None, **status: Any) -> Any:
    body: dict[str, Any] = {"phase": phase, **status}
    if state is not None:
        body["containerStatuses"] = [
            {
                "name": "replica",
                "image": "x",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": state,
            }
        ]
    pod = k8s.V1Pod.from_dict(
        {
            "metadata": {
                "name": pod_name(workload_id, 0),
                "namespace": "gpuyard",
                "labels": {
                    "app.kubernetes.io/managed-by": "gpuyard",
                    "gpuyard.io/workload-id": workload_id,
                    "gpuyard.io/replica": "0",
                },
                "creationTimestamp": "2026-12-04T10:00:00Z",
            },
            "spec": {"nodeName": NODE, "containers": [{"name": "replica", "image": "x"}]},
            "status": body,
        }
    )
    return observation_of(pod)


def reconcile(ctx: ServiceContext, observed: list[Any]) -> None:
    with ctx.db.read() as session:
        server_id = fleet.server_id_named(session, NODE)
    assert server_id is not None
    reconcile_server(ctx, server_id, RuntimeServer(NODE, ClusterKind.KUBERNETES.value), observed)


def status(api: TestClient, workload_id: str) -> tuple[str, str]:
    body = api.get(f"/api/v1/workloads/{workload_id}").json()
    return body["status"], body["reason"] or ""


def test_a_pod_is_starting_until_it_runs(
    ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    workload_id = placed_and_created(ctx, api, cluster)
    assert status(api, workload_id)[0] == "starting"

    reconcile(ctx, [pod_of(workload_id, "Pending", {"waiting": {"reason": "ContainerCreating"}})])
    assert status(api, workload_id)[0] == "starting"

    running = {"running": {"startedAt": "2026-12-04T10:00:09Z"}}
    reconcile(ctx, [pod_of(workload_id, "Running", running)])
    assert status(api, workload_id) == ("running", f"running on {NODE}")


@pytest.mark.parametrize(
    ("phase", "state", "extra", "expected"),
    [
        (
            "Pending",
            {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}},
            {},
            f'replica 0 cannot start on {NODE}: ImagePullBackOff: Back-off pulling image "x"',
        ),
        (
            "Failed",
            {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
            {},
            "replica 0 exited with code 137 (out of memory: killed at its RAM limit)",
        ),
        (
            "Failed",
            None,
            {"reason": "Evicted", "message": "The node was low on resource: memory."},
            "replica 0 exited with code 1: Evicted The node was low on resource: memory.",
        ),
    ],
    ids=["image-pull-back-off", "oom-killed", "evicted"],
)
def test_a_pod_that_cannot_run_fails_its_workload_with_the_reason(
    ctx: ServiceContext,
    cluster: str,
    api: TestClient,
    phase: str,
    state: dict[str, Any] | None,
    extra: dict[str, Any],
    expected: str,
) -> None:
    workload_id = placed_and_created(ctx, api, cluster)

    reconcile(ctx, [pod_of(workload_id, phase, state, **extra)])

    assert status(api, workload_id) == ("failed", expected)
    with ctx.db.read() as session:
        row = fleet.server_row_named(session, NODE)
        assert row is not None
        assert (row.alloc_gpu_milli, row.alloc_cpu_milli) == (0, 0)  # released


def test_a_resize_the_cluster_cannot_make_in_place_replaces_the_pod(
    ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    """This cluster's kubeconfig names no API server: the pod's resize is not made, so the
    workload is released (its pod torn down) and re-queued with the new size."""
    workload_id = placed_and_created(ctx, api, cluster)
    reconcile(ctx, [pod_of(workload_id, "Running", {"running": {}})])
    assert status(api, workload_id)[0] == "running"

    response = api.patch(f"/api/v1/workloads/{workload_id}", json={"cpu": 2})

    assert response.status_code == 200, response.text
    state, reason = status(api, workload_id)
    assert state == "pending"
    assert reason.startswith("resized to ")
    assert "not resized in place" in reason
    assert reason.endswith("replaced, re-queued")
    with ctx.db.read() as session:
        server_id = fleet.server_id_named(session, NODE)
        assert server_id is not None
        handle = make_handle(cluster, "gpuyard", pod_name(workload_id, 0))
        assert handle in container_store.teardown_handles(session, server_id)


def test_a_gpu_pod_is_never_culled_when_idle_and_its_events_say_why_once(
    ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    """Idle culling (issue 19): metrics-server reports no GPU utilisation, so a
    kubernetes GPU workload is never culled however long the culling loop looks, and its
    events and its culling state say why, once."""
    ctx.settings = ctx.settings.model_copy(update={"idle_cull_mode": "on"})
    workload_id = placed_and_created(ctx, api, cluster)
    reconcile(
        ctx, [pod_of(workload_id, "Running", {"running": {"startedAt": "2026-12-04T10:00:09Z"}})]
    )
    assert isinstance(ctx.clock, ManualClock)
    for _ in range(5):
        cull_workloads(ctx)
        ctx.clock.advance(ctx.settings.idle_cull_window_s)
    assert status(api, workload_id)[0] == "running"
    events = api.get(f"/api/v1/workloads/{workload_id}/events").json()["data"]
    notes = [e["reason"] for e in events if "never culled" in (e["reason"] or "")]
    assert notes == [f"never culled when idle: {metrics.GPU_POD}"]
    culling = api.get(f"/api/v1/workloads/{workload_id}/culling").json()
    assert culling["no_signal"] is True
    assert "metrics-server reports no GPU utilisation" in culling["no_signal_reason"]


def test_a_gpu_share_never_lands_on_a_kubernetes_node(
    ctx: ServiceContext, cluster: str, api: TestClient
) -> None:
    """A workload that names no cluster may land on any; a share of a GPU (0.5) must not
    land on a Kubernetes node (its device plugin hands out whole GPUs), while a whole GPU
    does. Here the node is the fleet's only GPU server: the share waits, saying why."""
    share = api.post("/api/v1/workloads", json={"name": "half", "image": "x", "gpu": 0.5})
    whole = api.post("/api/v1/workloads", json={"name": "one", "image": "x", "gpu": 1})
    assert share.status_code == 201, share.text
    assert whole.status_code == 201, whole.text
    settle(ctx)
    half = api.get(f"/api/v1/workloads/{share.json()['id']}").json()
    one = api.get(f"/api/v1/workloads/{whole.json()['id']}").json()
    assert one["server_name"] == NODE, (one["status"], one["reason"])
    assert half["status"] == "pending"
    assert half["server_name"] is None
    assert "whole GPUs only (no shares)" in half["reason"]
