"""A kubernetes cluster end to end, through the services, the API and the official client,
against the fake API server (tests/kube/, a test double: not Kubernetes): its nodes become
servers, a GPU workload becomes a pod bound to the chosen node (in its team's namespace,
created if missing), runs when the fake kubelet says so, stops by deleting it; an image
that cannot be pulled fails the workload; a higher priority preempts it; a watch whose
version expired lists again; foreign pods on a node are never oversubscribed; the API
server going away marks the servers offline and back."""

from __future__ import annotations

from factories.app import settle
from fastapi.testclient import TestClient
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE, servers, workload

from gpuyard.domain.kube_names import pod_name
from gpuyard.runtimes.kubernetes import KubernetesRuntime
from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.containers.teardown import run_teardowns
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.health import probe_servers
from gpuyard.services.fleet.kube_nodes import sync_kube_nodes


def submit_gpu_workload(ctx: ServiceContext, api: TestClient) -> str:
    response = api.post("/api/v1/workloads", json={"name": "train", "image": "x", "gpu": 2})
    assert response.status_code == 201, response.text
    settle(ctx)
    assert start_scheduled(ctx) == 1
    return str(response.json()["id"])


def test_nodes_become_servers_and_a_gpu_workload_a_pod_on_the_chosen_node(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.add_node("gpu-node-1", gpus=4)
    sync_kube_nodes(ctx)
    found = servers(api, kube_cluster)
    assert list(found) == ["gpu-node-1"]
    assert [g["model"] for g in found["gpu-node-1"]["gpus"]] == ["NVIDIA-H100-80GB-HBM3"] * 4

    workload_id = submit_gpu_workload(ctx, api)
    name = pod_name(workload_id, 0)
    pod = fake_apiserver.get("pods", name, NAMESPACE)
    assert pod["spec"]["nodeName"] == "gpu-node-1"
    [container] = pod["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert pod["metadata"]["labels"]["gpuyard.io/workload-id"] == workload_id
    namespace = fake_apiserver.get("namespaces", NAMESPACE)
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpuyard"
    assert workload(api, workload_id)["status"] == "starting"

    fake_apiserver.kubelet_run(NAMESPACE, name)
    reconcile_servers(ctx)
    assert workload(api, workload_id)["status"] == "running"

    response = api.post(f"/api/v1/workloads/{workload_id}/stop")
    assert response.status_code in (200, 202, 204), response.text
    run_teardowns(ctx)
    assert (NAMESPACE, name) not in set(fake_apiserver.names("pods"))
    assert workload(api, workload_id)["status"] == "stopped"


def test_an_image_that_cannot_be_pulled_fails_the_workload(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.add_node("gpu-node-1", gpus=4)
    sync_kube_nodes(ctx)
    workload_id = submit_gpu_workload(ctx, api)

    fake_apiserver.kubelet_waiting(NAMESPACE, pod_name(workload_id, 0), "ImagePullBackOff")
    reconcile_servers(ctx)

    found = workload(api, workload_id)
    assert found["status"] == "failed"
    assert "ImagePullBackOff" in found["reason"]


def test_the_api_server_going_away_marks_the_servers_offline_and_back(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.add_node("node-a", gpus=0)
    sync_kube_nodes(ctx)
    probe_servers(ctx)
    assert servers(api, kube_cluster)["node-a"]["status"] == "online"

    fake_apiserver.stop()
    for _ in range(ctx.settings.health_offline_after_misses):
        probe_servers(ctx)
    assert servers(api, kube_cluster)["node-a"]["status"] == "offline"

    fake_apiserver.start()
    probe_servers(ctx)
    assert servers(api, kube_cluster)["node-a"]["status"] == "online"


def test_a_watch_whose_version_expired_lists_again_without_losing_a_change(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    runtime = ctx.runtimes.for_kind("kubernetes")
    assert isinstance(runtime, KubernetesRuntime)
    fake_apiserver.add_node("node-a", gpus=0)
    sync_kube_nodes(ctx)  # listed: the versions to watch from are kept
    assert servers(api, kube_cluster)["node-a"]["status"] == "online"

    fake_apiserver.set_node_ready("node-a", False)
    fake_apiserver.compact()  # the kept versions are now too old: 410 Gone
    sync_kube_nodes(ctx)

    assert runtime.relists == 1
    assert servers(api, kube_cluster)["node-a"]["status"] == "draining"

    fake_apiserver.set_node_ready("node-a", True)
    sync_kube_nodes(ctx)  # watched this time
    assert runtime.relists == 1
    assert servers(api, kube_cluster)["node-a"]["status"] == "online"


def test_a_higher_priority_preempts_a_pod_which_is_deleted_and_requeued(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.add_node("gpu-node-1", gpus=2)
    sync_kube_nodes(ctx)
    low = api.post(
        "/api/v1/workloads", json={"name": "low", "image": "x", "gpu": 2, "priority": 1}
    ).json()["id"]
    settle(ctx)
    start_scheduled(ctx)
    fake_apiserver.kubelet_run(NAMESPACE, pod_name(low, 0))
    reconcile_servers(ctx)
    assert workload(api, low)["status"] == "running"

    urgent = api.post(
        "/api/v1/workloads", json={"name": "urgent", "image": "x", "gpu": 2, "priority": 5}
    ).json()["id"]
    settle(ctx)
    run_teardowns(ctx)
    start_scheduled(ctx)

    victim = workload(api, low)
    assert victim["status"] in ("preempted", "pending")
    assert "preempted by urgent (priority 5); re-queued in" in victim["reason"]
    assert victim["server_name"] is None  # its reservation given back
    pods = set(fake_apiserver.names("pods"))
    assert (NAMESPACE, pod_name(low, 0)) not in pods
    assert (NAMESPACE, pod_name(urgent, 0)) in pods
    assert workload(api, urgent)["status"] == "starting"


def test_a_share_of_a_gpu_on_a_kubernetes_cluster_is_refused_naming_gpu(
    api: TestClient, kube_cluster: str
) -> None:
    """Device plugins hand out whole GPUs: half of one is refused at submit, not asked as
    a whole one; nothing is written. Whole GPUs there, and shares elsewhere, are taken."""
    body = {"name": "half", "image": "x", "gpu": 0.5, "cluster_id": kube_cluster}

    refused = api.post("/api/v1/workloads", json=body)

    assert refused.status_code == 422, refused.text
    [error] = [e for e in refused.json()["errors"] if e["field"] == "gpu"]
    assert "whole GPUs only" in error["message"]
    assert api.get("/api/v1/workloads").json()["data"] == []
    whole = api.post("/api/v1/workloads", json={**body, "name": "whole", "gpu": 1})
    assert whole.status_code == 201, whole.text
    simulated = api.post("/api/v1/clusters", json={"name": "sim", "kind": "simulated"})
    assert simulated.status_code == 201, simulated.text
    elsewhere = {**body, "name": "share", "cluster_id": simulated.json()["id"]}
    assert api.post("/api/v1/workloads", json=elsewhere).status_code == 201


def test_a_teams_workload_is_a_pod_in_the_teams_namespace_created_if_missing(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.add_node("gpu-node-1", gpus=2)
    sync_kube_nodes(ctx)
    team = api.post("/api/v1/teams", json={"name": "prod-team"})
    assert team.status_code == 201, team.text
    assert ("", "prod-team") not in fake_apiserver.names("namespaces")
    body = {"name": "serve", "image": "x", "gpu": 1, "team_id": team.json()["id"]}
    response = api.post("/api/v1/workloads", json=body)
    assert response.status_code == 201, response.text
    settle(ctx)

    assert start_scheduled(ctx) == 1

    workload_id = response.json()["id"]
    pod = fake_apiserver.get("pods", pod_name(workload_id, 0), "prod-team")
    assert pod["spec"]["nodeName"] == "gpu-node-1"
    assert pod["metadata"]["labels"]["gpuyard.io/workload-id"] == workload_id
    namespace = fake_apiserver.get("namespaces", "prod-team")
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpuyard"
    assert (NAMESPACE, pod_name(workload_id, 0)) not in fake_apiserver.names("pods")


def test_a_node_shared_with_foreign_pods_is_never_oversubscribed(
    ctx: ServiceContext,
    api: TestClient,
    kube_cluster: str,
    fake_apiserver: FakeApiServer,
) -> None:
    """Pods another scheduler bound to the node, there at the first list or seen later by
    the watch, are subtracted from what gpuyard places there; their end gives it back."""
    fake_apiserver.add_node("gpu-node-1", gpus=4, cpu="16")
    fake_apiserver.add_foreign_pod("ml", "etl-0", "gpu-node-1", {"cpu": "4", "nvidia.com/gpu": "1"})
    sync_kube_nodes(ctx)  # the first list
    node = servers(api, kube_cluster)["gpu-node-1"]
    assert len(node["gpus"]) == 3

    fake_apiserver.add_foreign_pod("ml", "etl-1", "gpu-node-1", {"cpu": "8", "nvidia.com/gpu": "2"})
    sync_kube_nodes(ctx)  # the watch
    node = servers(api, kube_cluster)["gpu-node-1"]
    assert len(node["gpus"]) == 1
    two = api.post("/api/v1/workloads", json={"name": "two", "image": "x", "gpu": 2, "cpu": 1})
    settle(ctx)
    assert workload(api, two.json()["id"])["status"] == "pending"  # 1 GPU left for gpuyard
    assert start_scheduled(ctx) == 0
    assert [key for key in fake_apiserver.names("pods") if key[0] == NAMESPACE] == []

    fake_apiserver.delete_pod("ml", "etl-1", grace_period=0)  # its job done
    sync_kube_nodes(ctx)
    settle(ctx)
    assert start_scheduled(ctx) == 1
    placed = workload(api, two.json()["id"])
    assert placed["server_name"] == "gpu-node-1"
    requested = 0
    for namespace, name in fake_apiserver.names("pods"):
        pod = fake_apiserver.get("pods", name, namespace)
        for container in pod["spec"]["containers"]:
            requested += int(container["resources"].get("requests", {}).get("nvidia.com/gpu", 0))
    assert requested == 3  # etl-0 and gpuyard's pod: within the node's 4 GPUs
